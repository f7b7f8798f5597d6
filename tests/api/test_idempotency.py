"""Idempotency-Key: replay, reuse, in-use, required, scoping, and an answer stored only with its effect."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from bookwell.booking import api as booking_api
from bookwell.booking.adapters.sql import bookings
from bookwell.platform.idempotency import IdempotencyStore
from bookwell.platform.idempotency import idempotency_keys
from bookwell.platform.kernel.clock import utcnow
from tests.api.conftest import Api
from tests.api.conftest import problem
from tests.api.test_bookings import at
from tests.api.test_bookings import resource


def booking_body(resource_id: str, hour: int = 10) -> dict[str, Any]:
    return {
        "resource_id": resource_id,
        "start": at(2, hour),
        "end": at(2, hour + 1),
        "customer": {"name": "Ada", "email": "ada@example.com"},
    }


def count_bookings(app: Flask) -> int:
    with app.extensions["bookwell.container"].database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(bookings)).scalar_one())


def test_a_retry_gets_the_stored_answer_byte_for_byte(api: Api, app: Flask) -> None:
    court = resource(api)
    first = api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "order-1"})
    again = api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "order-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count_bookings(app) == 1


def test_the_same_key_for_another_request_is_422(api: Api) -> None:
    court = resource(api)
    api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "order-2"})
    other = api.post("/v1/bookings", json=booking_body(court, hour=12), headers={"Idempotency-Key": "order-2"})
    problem(other, 422, "idempotency_key_reused")
    elsewhere = api.post("/v1/resources", json={}, headers={"Idempotency-Key": "order-2"})
    problem(elsewhere, 422, "idempotency_key_reused")


def test_keys_belong_to_their_organization(api: Api, make_org: Any, app: Flask) -> None:
    other = api.as_(make_org("Other").token)
    mine, theirs = resource(api), resource(other)
    assert api.post("/v1/bookings", json=booking_body(mine), headers={"Idempotency-Key": "k"}).status_code == 201
    response = other.post("/v1/bookings", json=booking_body(theirs), headers={"Idempotency-Key": "k"})
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert count_bookings(app) == 2


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there", "é"])
def test_a_malformed_key_is_400(api: Api, bad: str) -> None:
    court = resource(api)
    headers = {"Idempotency-Key": bad.encode().decode("latin-1")}
    problem(api.post("/v1/bookings", json=booking_body(court), headers=headers), 400, "invalid_idempotency_key")


def test_a_required_key_that_is_missing_is_400(api: Api, app: Flask) -> None:
    court = resource(api)
    problem(api.post("/v1/bookings", json=booking_body(court)), 400, "idempotency_key_required")
    assert count_bookings(app) == 0


def test_while_the_first_request_runs_a_retry_is_409_in_use(api: Api, app: Flask, org: Any) -> None:
    court = resource(api)
    store = IdempotencyStore(app.extensions["bookwell.container"].database)
    body = booking_body(court)
    with app.test_request_context("/v1/bookings", method="POST", json=body):
        from bookwell.platform.http.pipeline.idempotency import _fingerprint

        fingerprint = _fingerprint()
    store.claim(org.id, "running", fingerprint, utcnow())  # as if another worker were processing it
    response = api.post("/v1/bookings", json=body, headers={"Idempotency-Key": "running"})
    problem(response, 409, "idempotency_key_in_use")
    # Retry-After tells when the claim lapses at the latest: 10 s (twice the 5 s statement timeout).
    lease_s = store.claim_lease.total_seconds()
    assert lease_s == 10
    assert lease_s - 1 <= int(response.headers["Retry-After"]) <= lease_s
    # A claim whose lease ran out belonged to a process that died before committing: run again.
    with app.extensions["bookwell.container"].database.engine.begin() as connection:
        connection.execute(update(idempotency_keys).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert api.post("/v1/bookings", json=body, headers={"Idempotency-Key": "running"}).status_code == 201


def test_a_failure_after_the_effect_leaves_no_effect_and_the_retry_runs_again(
    api: Api, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    court = resource(api)

    def fail_after_the_service_committed(*_: Any) -> None:
        raise RuntimeError("rendering failed")

    with monkeypatch.context() as patch:
        patch.setattr(booking_api, "with_etag", fail_after_the_service_committed)
        failed = api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "flaky"})
    problem(failed, 500, "internal_error")
    assert count_bookings(app) == 0  # the booking rolled back with the unstored answer
    retried = api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "flaky"})
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert count_bookings(app) == 1


def test_a_4xx_is_stored_but_a_retryable_409_is_not(api: Api, app: Flask) -> None:
    court = resource(api)
    taken = api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "a"}).get_json()
    refused = api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "b"})
    problem(refused, 409, "slot_unavailable")
    api.post(f"/v1/bookings/{taken['id']}/cancel", json={}, headers={"Idempotency-Key": "c"})
    replay = api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "b"})
    # The stored answer, though the slot is free now, byte for byte (so its request_id is the first one's).
    assert (replay.status_code, replay.get_data()) == (409, refused.get_data())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["X-Request-ID"] != refused.headers["X-Request-ID"]


def test_keys_older_than_a_day_are_purged(api: Api, app: Flask) -> None:
    court = resource(api)
    api.post("/v1/bookings", json=booking_body(court), headers={"Idempotency-Key": "old"})
    api.post("/v1/bookings", json=booking_body(court, hour=14), headers={"Idempotency-Key": "new"})
    database = app.extensions["bookwell.container"].database
    with database.engine.begin() as connection:
        connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == "old")
            .values(created_at=utcnow() - timedelta(hours=25))
        )
    assert IdempotencyStore(database).purge(utcnow()) == 1
    with database.engine.connect() as connection:
        assert connection.execute(select(idempotency_keys.c.key)).scalars().all() == ["new"]


def test_deeply_nested_json_under_a_key_is_400_not_500(api: Api) -> None:
    deep = "[" * 15000 + "]" * 15000
    response = api.post("/v1/bookings", data=deep, content_type="application/json", headers={"Idempotency-Key": "d"})
    problem(response, 400, "malformed_json")
