"""No double booking and no double effect under real concurrency: many simultaneous HTTP requests
against a multi-worker Gunicorn server, on SQLite and on PostgreSQL, checked against the database."""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bookwell.booking.adapters.sql import SqlBookingUnitOfWork
from bookwell.booking.domain import Booking
from bookwell.booking.domain import peak_usage
from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from tests.conftest import UNLIMITED_ENV
from tests.support.gunicorn import gunicorn

ROOT = Path(__file__).resolve().parents[3]
CONCURRENT = 64
ROUNDS = 20
HORIZON_DAYS = 730
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return json.loads(self.body).get("code") if self.status >= 400 else None


@dataclass(frozen=True)
class Server:
    url: str
    token: str

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"} | (headers or {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own local server
                return Answer(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read(), dict(error.headers))


@pytest.fixture
def server(database: Database, tmp_path: Path) -> Iterator[Server]:
    """Gunicorn with 4 workers x 8 threads on the test database, and an organization's token."""
    _, token = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Load")
    workers = {"BOOKWELL_LOG_LEVEL": "WARNING", "BOOKWELL_WEB_WORKERS": "4", "BOOKWELL_WEB_THREADS": "8"}
    with gunicorn(database, tmp_path, **workers, **UNLIMITED_ENV) as port:
        yield Server(f"http://127.0.0.1:{port}", token)


def at_once(calls: list[Any]) -> list[Answer]:
    """Run the calls together: every thread waits at a barrier, then all send."""
    barrier = threading.Barrier(len(calls))

    def send(call: Any) -> Answer:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))


def new_resource(server: Server, capacity: int) -> str:
    answer = server.call(
        "POST",
        "/v1/resources",
        {
            "name": "Contended",
            "timezone": "UTC",
            "slot_minutes": 30,
            "capacity": capacity,
            "max_slots": 4,
            "opening_hours": {day: [["00:00", "24:00"]] for day in DAYS},
            "price_per_slot": {"amount": 0, "currency": "EUR"},
        },
    )
    assert answer.status == 201, answer.body
    return str(json.loads(answer.body)["id"])


def stored_bookings(database: Database, resource_id: str) -> list[Booking]:
    """Every live (pending or confirmed) booking of the resource, read through the repository."""
    everything = (datetime.now(UTC), datetime.now(UTC) + timedelta(days=HORIZON_DAYS))
    with SqlBookingUnitOfWork(database, readonly=True) as uow:
        return list(uow.bookings.overlapping(resource_id, *everything, datetime.now(UTC)))


def worst_overlap(booked: list[Booking]) -> int:
    """The most capacity in use at any instant, over the whole span the bookings cover."""
    if not booked:
        return 0
    return peak_usage(booked, min(b.start for b in booked), max(b.end for b in booked))


@pytest.mark.parametrize("capacity", [1, 3])
def test_simultaneous_overlapping_requests_never_exceed_capacity(
    server: Server, database: Database, capacity: int
) -> None:
    rng = random.Random(f"{database.dialect}-{capacity}")
    for round_ in range(ROUNDS):
        resource_id = new_resource(server, capacity)
        # Every range covers one shared 30-minute slot, so all 64 overlap pairwise.
        shared = (datetime.now(UTC) + timedelta(days=2 + round_)).replace(
            hour=rng.randrange(2, 20), minute=rng.choice((0, 30)), second=0, microsecond=0
        )

        def booking(n: int, shared: datetime = shared, resource_id: str = resource_id, round_: int = round_) -> Any:
            before = rng.randrange(0, 3)
            after = rng.randrange(0, 4 - before)
            start = shared - timedelta(minutes=30 * before)
            end = shared + timedelta(minutes=30 * (1 + after))
            body = {
                "resource_id": resource_id,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "customer": {"name": f"C{n}", "email": f"c{n}@example.com"},
            }
            return lambda: server.call("POST", "/v1/bookings", body, {"Idempotency-Key": f"r{round_}-{n}"})

        answers = at_once([booking(n) for n in range(CONCURRENT)])
        statuses = sorted(a.status for a in answers)
        assert statuses.count(201) == capacity, (
            round_,
            sorted({(a.status, a.code) for a in answers}),
            answers[0].body[:300],
        )
        assert all(a.status == 409 for a in answers if a.status != 201), (round_, statuses)
        assert {a.code for a in answers if a.status == 409} <= {"slot_unavailable", "resource_busy"}
        booked = stored_bookings(database, resource_id)
        assert len(booked) == capacity
        assert worst_overlap(booked) <= capacity


def test_simultaneous_identical_requests_with_one_key_make_one_booking(server: Server, database: Database) -> None:
    resource_id = new_resource(server, 5)
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    body = {
        "resource_id": resource_id,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "customer": {"name": "Ada", "email": "ada@example.com"},
    }
    answers = at_once([lambda: server.call("POST", "/v1/bookings", body, {"Idempotency-Key": "same"})] * 20)
    created = [a for a in answers if a.status == 201]
    assert created
    assert all(a.status == 409 and a.code == "idempotency_key_in_use" for a in answers if a.status != 201)
    assert len({a.body for a in created}) == 1  # the original and every replay, byte for byte
    assert len(stored_bookings(database, resource_id)) == 1
    replay = server.call("POST", "/v1/bookings", body, {"Idempotency-Key": "same"})
    assert (replay.status, replay.body, replay.headers.get("Idempotent-Replayed")) == (201, created[0].body, "true")
    other = server.call("POST", "/v1/bookings", body | {"quantity": 2}, {"Idempotency-Key": "same"})
    assert (other.status, other.code) == (422, "idempotency_key_reused")
