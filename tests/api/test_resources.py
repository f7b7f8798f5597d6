"""Resources over HTTP: CRUD, validation, conditional requests, pagination, tenancy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import RESOURCE
from tests.api.conftest import Api
from tests.api.conftest import problem


def create(api: Api, **overrides: Any) -> dict[str, Any]:
    response = api.post("/v1/resources", json=RESOURCE | overrides)
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_create_returns_the_resource_with_defaults_location_and_etag(api: Api) -> None:
    response = api.post("/v1/resources", json=RESOURCE)
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/v1/resources/{body['id']}"
    assert response.headers["ETag"] == '"v1"'
    assert body["id"].startswith("res_")
    assert body | RESOURCE == body  # everything sent comes back as sent
    assert (body["capacity"], body["min_slots"], body["max_slots"], body["hold_minutes"]) == (1, 1, 1, 10)
    assert body["cancellation"] == {"refund_until_hours_before": 24}
    assert body["active"] is True
    assert body["created_at"].endswith("Z")


def test_get_and_conditional_get(api: Api) -> None:
    created = create(api)
    response = api.get(f"/v1/resources/{created['id']}")
    assert response.status_code == 200
    assert response.get_json() == created
    etag = response.headers["ETag"]
    again = api.get(f"/v1/resources/{created['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert api.get(f"/v1/resources/{created['id']}", headers={"If-None-Match": '"v9"'}).status_code == 200


def test_patch_requires_if_match_and_rejects_a_stale_one(api: Api) -> None:
    created = create(api)
    path = f"/v1/resources/{created['id']}"
    problem(api.patch(path, json={"capacity": 3}), 428, "precondition_required")
    updated = api.patch(path, json={"capacity": 3, "description": "Clay"}, headers={"If-Match": '"v1"'})
    assert updated.status_code == 200
    assert updated.headers["ETag"] == '"v2"'
    assert (updated.get_json()["capacity"], updated.get_json()["description"]) == (3, "Clay")
    problem(api.patch(path, json={"capacity": 4}, headers={"If-Match": '"v1"'}), 412, "precondition_failed")
    problem(api.patch(path, json={"capacity": 4}, headers={"If-Match": 'W/"v2"'}), 412, "precondition_failed")
    for empty in ['""', '"", "v1"']:
        problem(api.patch(path, json={"capacity": 4}, headers={"If-Match": empty}), 412, "precondition_failed")
    assert api.get(path).get_json()["capacity"] == 3
    cleared = api.patch(path, json={"description": None}, headers={"If-Match": "*"})
    assert cleared.status_code == 200
    assert cleared.get_json()["description"] is None


def test_patch_that_breaks_a_rule_changes_nothing(api: Api) -> None:
    created = create(api)
    path = f"/v1/resources/{created['id']}"
    body = problem(api.patch(path, json={"slot_minutes": 45}, headers={"If-Match": '"v1"'}), 422, "validation_failed")
    assert {"pointer": "/opening_hours/monday/0", "detail": body["errors"][0]["detail"]} in body["errors"]
    problem(api.patch(path, json={"name": None}, headers={"If-Match": '"v1"'}), 422, "validation_failed")
    after = api.get(path)
    assert after.get_json() == created
    assert after.headers["ETag"] == '"v1"'


def test_delete_is_soft_conditional_and_final(api: Api) -> None:
    created = create(api)
    path = f"/v1/resources/{created['id']}"
    problem(api.delete(path), 428, "precondition_required")
    problem(api.delete(path, headers={"If-Match": '"v7"'}), 412, "precondition_failed")
    assert api.delete(path, headers={"If-Match": '"v1"'}).status_code == 204
    problem(api.get(path), 404, "resource_not_found")
    problem(api.delete(path, headers={"If-Match": "*"}), 404, "resource_not_found")
    assert api.get("/v1/resources").get_json()["data"] == []


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"timezone": "Mars/Olympus"}, "/timezone"),
        ({"timezone": "../../etc/passwd"}, "/timezone"),
        ({"slot_minutes": 7}, "/slot_minutes"),
        ({"min_slots": 3, "max_slots": 2}, "/max_slots"),
        ({"price_per_slot": {"amount": 100, "currency": "XXX"}}, "/price_per_slot/currency"),
        ({"price_per_slot": {"amount": -1, "currency": "EUR"}}, "/price_per_slot/amount"),
        ({"price_per_slot": {"amount": 1.5, "currency": "EUR"}}, "/price_per_slot/amount"),
        ({"capacity": "3"}, "/capacity"),
        ({"name": "   "}, "/name"),
        ({"name": "x" * 201}, "/name"),
        ({"opening_hours": {"monday": [["10:00", "09:00"]]}}, "/opening_hours/monday/0"),
        ({"opening_hours": {"monday": [["09:15", "10:00"]]}}, "/opening_hours/monday/0"),
        ({"opening_hours": {"monday": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "/opening_hours/monday/1"),
        ({"opening_hours": {"monday": [["24:00", "24:00"]]}}, "/opening_hours/monday/0"),
        ({"opening_hours": {"monday": [["25:00", "26:00"]]}}, "/opening_hours/monday/0/0"),
        ({"opening_hours": {"funday": [["09:00", "10:00"]]}}, "/opening_hours/funday"),
        ({"opening_hours": {"monday": None}}, "/opening_hours/monday"),
        ({"surprise": True}, "/surprise"),
    ],
)
def test_invalid_resources_are_422_with_a_pointer_and_store_nothing(
    api: Api, overrides: dict[str, Any], pointer: str
) -> None:
    body = problem(api.post("/v1/resources", json=RESOURCE | overrides), 422, "validation_failed")
    assert pointer in [error["pointer"] for error in body["errors"]]
    assert api.get("/v1/resources").get_json()["data"] == []


def test_missing_fields_are_named(api: Api) -> None:
    body = problem(api.post("/v1/resources", json={}), 422, "validation_failed")
    pointers = {error["pointer"] for error in body["errors"]}
    assert pointers == {"/name", "/timezone", "/slot_minutes", "/opening_hours", "/price_per_slot"}


def test_list_pages_newest_first_with_cursor_and_link(api: Api) -> None:
    ids = [create(api, name=f"Desk {n}")["id"] for n in range(5)]
    seen: list[str] = []
    response = api.get("/v1/resources?limit=2")
    while True:
        body = response.get_json()
        seen += [item["id"] for item in body["data"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            assert "Link" not in response.headers
            break
        assert response.headers["Link"].endswith('>; rel="next"')
        assert f"cursor={body['next_cursor']}" in response.headers["Link"]
        response = api.get(f"/v1/resources?limit=2&cursor={body['next_cursor']}")
    assert seen == list(reversed(ids))


def test_list_filters_on_active(api: Api) -> None:
    active = create(api)["id"]
    inactive = create(api, active=False)["id"]
    assert [r["id"] for r in api.get("/v1/resources?active=true").get_json()["data"]] == [active]
    assert [r["id"] for r in api.get("/v1/resources?active=false").get_json()["data"]] == [inactive]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "active=maybe"])
def test_bad_query_parameters_are_422(api: Api, query: str) -> None:
    body = problem(api.get(f"/v1/resources?{query}"), 422, "validation_failed")
    assert body["errors"][0]["pointer"].startswith("/query/")


def test_forged_garbled_and_foreign_cursors_are_400(api: Api) -> None:
    for _ in range(3):
        create(api)
    cursor = api.get("/v1/resources?limit=1").get_json()["next_cursor"]
    forged = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for bad in ["garbage", forged, "%%%"]:
        problem(api.get("/v1/resources", query_string={"cursor": bad}), 400, "invalid_cursor")
    problem(api.get("/v1/api-keys", query_string={"cursor": cursor}), 400, "invalid_cursor")


def test_a_cursor_works_only_for_the_organization_and_filters_that_minted_it(api: Api, make_org: Any) -> None:
    for _ in range(3):
        create(api)
    cursor = api.get("/v1/resources?limit=1&active=true").get_json()["next_cursor"]
    assert api.get(f"/v1/resources?limit=2&active=true&cursor={cursor}").status_code == 200, "limit may change"
    other = api.as_(make_org("Other").token)
    problem(other.get(f"/v1/resources?limit=1&active=true&cursor={cursor}"), 400, "invalid_cursor")
    problem(api.get(f"/v1/resources?limit=1&cursor={cursor}"), 400, "invalid_cursor")
    problem(api.get(f"/v1/resources?limit=1&active=false&cursor={cursor}"), 400, "invalid_cursor")


def test_another_organizations_resource_is_404_like_one_that_never_existed(api: Api, make_org: Any) -> None:
    other = api.as_(make_org("Other").token)
    theirs = create(other)
    path = f"/v1/resources/{theirs['id']}"
    never = problem(api.get("/v1/resources/res_00000000000000000000000000"), 404, "resource_not_found")
    foreign = problem(api.get(path), 404, "resource_not_found")
    assert (foreign["title"], foreign["detail"]) == (never["title"], never["detail"])
    problem(api.patch(path, json={"capacity": 2}, headers={"If-Match": "*"}), 404, "resource_not_found")
    problem(api.delete(path, headers={"If-Match": "*"}), 404, "resource_not_found")
    assert api.get("/v1/resources").get_json()["data"] == []
    assert other.get(path).get_json() == theirs


def test_a_malformed_id_is_404(api: Api) -> None:
    problem(api.get("/v1/resources/not-an-id"), 404, "not_found")
