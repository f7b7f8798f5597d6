"""Bookings over HTTP: holds, conflicts, availability, listing, cancelling, the event log."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.conftest import problem

_keys = itertools.count()
OPEN_ALL_DAY = {
    day: [["00:00", "24:00"]] for day in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
}


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{next(_keys)}"}


def at(days: int, hour: int) -> str:
    moment = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def resource(api: Api, **overrides: Any) -> str:
    body = {
        "name": "Court",
        "timezone": "UTC",
        "slot_minutes": 60,
        "max_slots": 4,
        "opening_hours": OPEN_ALL_DAY,
        "price_per_slot": {"amount": 0, "currency": "EUR"},
    } | overrides
    response = api.post("/v1/resources", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return str(response.get_json()["id"])


def book(api: Api, resource_id: str, start: str, end: str, **extra: Any) -> Any:
    body = {
        "resource_id": resource_id,
        "start": start,
        "end": end,
        "customer": {"name": "Ada", "email": "Ada@Example.com"},
    } | extra
    return api.post("/v1/bookings", json=body, headers=key())


def test_a_free_resource_confirms_at_once(api: Api) -> None:
    court = resource(api)
    response = book(api, court, at(2, 10), at(2, 12), metadata={"ref": "A-1"})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/v1/bookings/{body['id']}"
    assert (body["status"], body["hold_expires_at"], body["quantity"]) == ("confirmed", None, 1)
    assert body["customer"] == {
        "name": "Ada",
        "email": "Ada@example.com",
    }  # the domain lowercased, the local part as given
    assert body["price"] == {"amount": 0, "currency": "EUR"}
    assert body["metadata"] == {"ref": "A-1"}
    assert api.get(f"/v1/bookings/{body['id']}").get_json() == body | {"saga": None}  # free: no saga


def test_a_priced_resource_holds_the_slot_pending_payment(api: Api) -> None:
    court = resource(api, price_per_slot={"amount": 1500, "currency": "EUR"}, capacity=2, hold_minutes=7)
    body = book(api, court, at(2, 10), at(2, 12), quantity=2, payment={"token": "tok_ok"}).get_json()
    assert body["status"] == "pending"
    assert body["price"] == {"amount": 6000, "currency": "EUR"}
    held_until = datetime.fromisoformat(body["hold_expires_at"])
    created = datetime.fromisoformat(body["created_at"])
    assert timedelta(minutes=6) < held_until - created <= timedelta(minutes=7)


def test_overlapping_requests_beyond_capacity_are_409_slot_unavailable(api: Api) -> None:
    court = resource(api)
    assert book(api, court, at(2, 10), at(2, 12)).status_code == 201
    problem(book(api, court, at(2, 11), at(2, 13)), 409, "slot_unavailable")
    assert book(api, court, at(2, 12), at(2, 13)).status_code == 201  # touching is not overlapping


def test_capacity_counts_what_overlaps_at_each_instant(api: Api) -> None:
    hall = resource(api, capacity=2)
    assert book(api, hall, at(2, 9), at(2, 11)).status_code == 201
    assert book(api, hall, at(2, 11), at(2, 13)).status_code == 201
    assert book(api, hall, at(2, 10), at(2, 12)).status_code == 201  # at most two at any instant
    problem(book(api, hall, at(2, 10), at(2, 11)), 409, "slot_unavailable")


@pytest.mark.parametrize(
    ("change", "code", "pointer"),
    [
        ({"start": "end"}, "invalid_range", "/end"),
        ({"days": -1}, "start_in_past", "/start"),
        ({"days": 800}, "beyond_horizon", "/end"),
        ({"quantity": 2}, "quantity_exceeds_capacity", "/quantity"),
        ({"minute": 30}, "not_on_slot_boundary", "/start"),
        ({"hours": 5}, "invalid_duration", "/end"),
        ({"payment": {"token": "tok_ok"}}, "payment_not_accepted", "/payment"),
        ({"resource_id": "res_00000000000000000000000000"}, "unknown_resource", "/resource_id"),
    ],
)
def test_rules_of_the_resource_are_422_with_their_code(
    api: Api, change: dict[str, Any], code: str, pointer: str
) -> None:
    court = resource(api)
    days = change.pop("days", 2)
    start, end = at(days, 10), at(days, 10 + change.pop("hours", 1))
    if change.pop("start", None):
        start, end = end, start
    if "minute" in change:
        start = start.replace(":00:00Z", f":{change.pop('minute'):02d}:00Z")
    body = problem(book(api, change.pop("resource_id", court), start, end, **change), 422, code)
    assert body["errors"][0]["pointer"] == pointer
    assert api.get("/v1/bookings").get_json()["data"] == []


def test_outside_opening_hours_and_inactive_resources(api: Api) -> None:
    shop = resource(api, opening_hours={day: [["09:00", "12:00"], ["13:00", "17:00"]] for day in OPEN_ALL_DAY})
    problem(book(api, shop, at(2, 11), at(2, 13)), 422, "outside_opening_hours")
    problem(book(api, shop, at(2, 7), at(2, 8)), 422, "outside_opening_hours")
    assert book(api, shop, at(2, 13), at(2, 15)).status_code == 201
    closed = resource(api, active=False)
    problem(book(api, closed, at(2, 10), at(2, 11)), 422, "resource_inactive")


def test_priced_resources_need_a_payment_token(api: Api) -> None:
    court = resource(api, price_per_slot={"amount": 100, "currency": "USD"})
    problem(book(api, court, at(2, 10), at(2, 11)), 422, "payment_required")


@pytest.mark.parametrize(
    "bad",
    [
        {"start": "0.5"},
        {"start": 1700000000},
        {"start": "2027-01-01T10:00:00"},
        {"customer": {"name": "A", "email": "x"}},
        {"metadata": {f"k{n}": "v" for n in range(21)}},
        {"metadata": {"k": "v" * 501}},
        {"quantity": 0},
    ],
)
def test_malformed_bookings_are_422(api: Api, bad: dict[str, Any]) -> None:
    court = resource(api)
    body = {"resource_id": court, "start": at(2, 10), "end": at(2, 11), "customer": {"name": "A", "email": "a@b.co"}}
    problem(api.post("/v1/bookings", json=body | bad, headers=key()), 422, "validation_failed")


def test_availability_shrinks_as_slots_are_taken_and_is_cacheable(api: Api) -> None:
    court = resource(api, capacity=2, opening_hours={day: [["09:00", "12:00"]] for day in OPEN_ALL_DAY})
    path = f"/v1/resources/{court}/availability"
    window = {"from": at(2, 0), "to": at(3, 0)}
    first = api.get(path, query_string=window)
    assert first.status_code == 200
    assert "max-age=5" in first.headers["Cache-Control"]
    slots = first.get_json()["slots"]
    assert [(s["start"][11:16], s["remaining"]) for s in slots] == [("09:00", 2), ("10:00", 2), ("11:00", 2)]
    assert api.get(path, query_string=window, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    book(api, court, at(2, 10), at(2, 12))
    second = api.get(path, query_string=window, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert [s["remaining"] for s in second.get_json()["slots"]] == [2, 1, 1]


@pytest.mark.parametrize(
    ("window", "pointer"),
    [
        ({"from": at(3, 0), "to": at(2, 0)}, "/query/to"),
        ({"from": at(1, 0), "to": at(40, 0)}, "/query/to"),
        ({"from": "yesterday", "to": at(2, 0)}, "/query/from"),
    ],
)
def test_availability_spans_are_checked(api: Api, window: dict[str, str], pointer: str) -> None:
    court = resource(api)
    body = problem(api.get(f"/v1/resources/{court}/availability", query_string=window), 422, "validation_failed")
    assert body["errors"][0]["pointer"] == pointer


def test_cancel_releases_the_slot_and_is_final(api: Api) -> None:
    court = resource(api)
    booking = book(api, court, at(2, 10), at(2, 11)).get_json()
    path = f"/v1/bookings/{booking['id']}/cancel"
    problem(api.post(path, json={}), 400, "idempotency_key_required")
    cancelled = api.post(path, json={"reason": "rain"}, headers=key())
    assert cancelled.status_code == 200
    assert (cancelled.get_json()["status"], cancelled.get_json()["cancellation_reason"]) == ("cancelled", "rain")
    problem(api.post(path, json={}, headers=key()), 409, "invalid_transition")
    assert book(api, court, at(2, 10), at(2, 11)).status_code == 201


def test_list_filters_and_pages_newest_first(api: Api, make_org: Any) -> None:
    a, b = resource(api), resource(api)
    made = [book(api, a, at(2, h), at(2, h + 1)).get_json()["id"] for h in (8, 9, 10)]
    made.append(book(api, b, at(2, 8), at(2, 9), customer={"name": "Bo", "email": "bo@x.io"}).get_json()["id"])
    api.post(f"/v1/bookings/{made[0]}/cancel", json={}, headers=key())
    listed = api.get("/v1/bookings?limit=3").get_json()
    assert [x["id"] for x in listed["data"]] == made[::-1][:3]
    assert listed["has_more"] is True
    rest = api.get(f"/v1/bookings?limit=3&cursor={listed['next_cursor']}").get_json()
    assert [x["id"] for x in rest["data"]] == [made[0]]
    assert [x["id"] for x in api.get(f"/v1/bookings?resource_id={b}").get_json()["data"]] == [made[3]]
    assert [x["id"] for x in api.get("/v1/bookings?status=cancelled").get_json()["data"]] == [made[0]]
    assert [x["id"] for x in api.get("/v1/bookings?customer_email=BO@x.io").get_json()["data"]] == [made[3]]
    window = {"start_from": at(2, 9), "start_to": at(2, 10)}
    assert [x["id"] for x in api.get("/v1/bookings", query_string=window).get_json()["data"]] == [made[1]]
    other = api.as_(make_org("Other").token)
    assert other.get("/v1/bookings").get_json()["data"] == []
    problem(other.get(f"/v1/bookings/{made[1]}"), 404, "booking_not_found")
    problem(other.post(f"/v1/bookings/{made[1]}/cancel", json={}, headers=key()), 404, "booking_not_found")


def test_the_event_log_lists_what_happened_oldest_first(api: Api, relay: Callable[[], int]) -> None:
    court = resource(api)
    booking = book(api, court, at(2, 10), at(2, 11)).get_json()
    api.post(f"/v1/bookings/{booking['id']}/cancel", json={}, headers=key())
    assert api.get("/v1/events").get_json()["data"] == [], "the log shows delivered events only"
    assert relay() == 4
    events = api.get("/v1/events").get_json()["data"]
    assert [e["type"] for e in events] == [
        "resource.created",
        "booking.created",
        "booking.confirmed",
        "booking.cancelled",
    ]
    assert events[-1]["data"]["object"]["status"] == "cancelled"
    assert events[1]["data"]["object"]["id"] == booking["id"]
    only = api.get("/v1/events?type=booking.cancelled").get_json()["data"]
    assert [e["id"] for e in only] == [events[-1]["id"]]
    first_page = api.get("/v1/events?limit=2").get_json()
    second_page = api.get(f"/v1/events?limit=2&cursor={first_page['next_cursor']}").get_json()
    assert [e["id"] for e in first_page["data"] + second_page["data"]] == [e["id"] for e in events]


def test_emails_are_stored_and_matched_in_one_normal_form(api: Api) -> None:
    court = resource(api)
    body = book(
        api, court, at(2, 10), at(2, 11), customer={"name": "Ada", "email": "A\u0308DA@Bücher.Example"}
    ).get_json()
    assert body["customer"]["email"] == "ÄDA@bücher.example"  # NFC, the domain lowercased, the local part as given
    german = book(api, court, at(2, 12), at(2, 13), customer={"name": "Bo", "email": "Bo@Straße.de"}).get_json()
    assert german["customer"]["email"] == "Bo@straße.de", "a domain is not casefolded (ß.de is not ss.de)"
    found = api.get("/v1/bookings", query_string={"customer_email": "bo@STRASSE.de"}).get_json()["data"]
    assert found == [], "straße.de is not strasse.de"
    for asked in ["äda@bücher.example", "ÄDA@BÜCHER.EXAMPLE", "Äda@xn--bcher-kva.example", "a\u0308da@bücher.example"]:
        found = api.get("/v1/bookings", query_string={"customer_email": asked}).get_json()
        assert [b["id"] for b in found["data"]] == [body["id"]], asked


@pytest.mark.parametrize(
    "address",
    [
        "ada\u200b@example.com",  # zero-width space
        "ada\u0007@example.com",  # a control character
        "<script>@example.com",
        '"ada"@example.com',  # a quoted local part
        "\u0130" * 240 + "@example.com",  # too long
        "ada@exa_mple.com",
        "ada@-example.com",
    ],
)
def test_addresses_that_are_not_plain_email_are_422_and_stored_nowhere(api: Api, address: str) -> None:
    court = resource(api)
    refused = book(api, court, at(2, 10), at(2, 11), customer={"name": "Ada", "email": address})
    body = problem(refused, 422, "validation_failed")
    assert body["errors"][0]["pointer"] == "/customer/email"
    assert api.get("/v1/bookings").get_json()["data"] == []
