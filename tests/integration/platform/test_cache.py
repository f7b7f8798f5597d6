"""Cached reads (ADR 0035) on their real stores: two app instances stand for two workers, each with
its own cache object (its own entries, flights and failure state) over the shared store: the local
store's generations file, or Redis."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.cache import cache_for
from bookwell.platform.cache.core import Cache
from bookwell.platform.db import Database
from bookwell.platform.kernel.cache import Fill
from bookwell.platform.kernel.cache import Scope
from bookwell.settings import Settings
from tests.conftest import REDIS_URL
from tests.conftest import require_service
from tests.support.booking import court

DAY = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
AVAILABILITY = {
    "from": DAY.isoformat().replace("+00:00", "Z"),
    "to": (DAY + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
}


def _settings(database: Database, tmp_path: Path, cache_url: str) -> Settings:
    return database.settings.model_copy(update={"cache_url": cache_url, "data_dir": tmp_path})


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Database, Settings]:
    """The local store on a SQLite file, or Redis on PostgreSQL: each as it is deployed."""
    if request.param == "local":
        database: Database = request.getfixturevalue("sqlite_database")
        return database, _settings(database, tmp_path, "local")
    require_service("redis")
    database = request.getfixturevalue("postgres_database")
    return database, _settings(database, tmp_path, REDIS_URL)


def _worker(database: Database, settings: Settings) -> Flask:
    return create_app(settings, container=bootstrap(settings, database=database))


def _organization(database: Database, name: str = "Acme") -> tuple[str, dict[str, str]]:
    organization, token = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name=name)
    return organization.id, {"Authorization": f"Bearer {token}"}


def _booking(resource_id: str, hour: int) -> dict[str, Any]:
    start = DAY + timedelta(hours=hour)
    return {
        "resource_id": resource_id,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "customer": {"name": "Ada", "email": "ada@example.com"},
    }


def _once() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _remaining(client: FlaskClient, resource_id: str, auth: dict[str, str]) -> list[int]:
    answer = client.get(f"/v1/resources/{resource_id}/availability", query_string=AVAILABILITY, headers=auth)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return [slot["remaining"] for slot in answer.get_json()["slots"]]


def test_no_read_after_a_write_is_stale_across_two_workers(store: tuple[Database, Settings]) -> None:
    """1,000 interleavings: each worker reads (and so caches), the other writes, then the first reads
    again and must see the write: 500 renames of a resource, 250 bookings and their 250 cancellations."""
    database, settings = store
    workers = [_worker(database, settings).test_client() for _ in range(2)]
    organization_id, auth = _organization(database)
    resource_id = court(database, organization_id, capacity=1)
    for n in range(500):
        reader, writer = workers[n % 2], workers[(n + 1) % 2]
        before = reader.get(f"/v1/resources/{resource_id}", headers=auth)
        renamed = writer.patch(
            f"/v1/resources/{resource_id}",
            json={"name": f"Court {n}"},
            headers=auth | {"If-Match": before.headers["ETag"]},
        )
        assert renamed.status_code == 200, renamed.get_data(as_text=True)
        after = reader.get(f"/v1/resources/{resource_id}", headers=auth)
        assert (after.get_json()["name"], after.headers["ETag"]) == (f"Court {n}", renamed.headers["ETag"])
    for n in range(250):
        reader, writer = workers[n % 2], workers[(n + 1) % 2]
        hour = n % 24
        assert _remaining(reader, resource_id, auth)[hour] == 1
        placed = writer.post("/v1/bookings", json=_booking(resource_id, hour), headers=auth | _once())
        assert placed.status_code == 201, placed.get_data(as_text=True)
        assert _remaining(reader, resource_id, auth)[hour] == 0
        cancelled = reader.post(f"/v1/bookings/{placed.get_json()['id']}/cancel", json={}, headers=auth | _once())
        assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
        assert _remaining(writer, resource_id, auth)[hour] == 1


def test_an_organization_never_gets_another_ones_entry(store: tuple[Database, Settings]) -> None:
    database, settings = store
    worker = _worker(database, settings).test_client()
    ours, our_auth = _organization(database, "Ours")
    _, their_auth = _organization(database, "Theirs")
    resource_id = court(database, ours)
    for _ in range(2):  # the second read of each is a hit for us
        assert worker.get(f"/v1/resources/{resource_id}", headers=our_auth).status_code == 200
        assert _remaining(worker, resource_id, our_auth)
    assert worker.get(f"/v1/resources/{resource_id}", headers=their_auth).status_code == 404
    theirs = worker.get(f"/v1/resources/{resource_id}/availability", query_string=AVAILABILITY, headers=their_auth)
    assert theirs.status_code == 404
    # Keys are built from JSON arrays: ids that would run together in a joined string stay apart.
    cache = cache_for(settings)
    assert cache.read(Scope("a:b", "c"), "n", lambda: Fill(b"first", 60)) == b"first"
    assert cache.read(Scope("a", "b:c"), "n", lambda: Fill(b"second", 60)) == b"second"
    assert cache.read(Scope("a:b", "c"), "n", lambda: Fill(b"reloaded", 60)) == b"first"


def test_200_concurrent_misses_of_one_entry_make_one_query(store: tuple[Database, Settings]) -> None:
    """200 simultaneous availability requests, 100 through each worker, for an entry nobody has:
    one SELECT on the bookings table between them (the local store shares within a worker only,
    so there it is one per worker)."""
    database, settings = store
    apps = [_worker(database, settings) for _ in range(2)]
    organization_id, auth = _organization(database)
    resource_id = court(database, organization_id)
    for app in apps:  # every worker has trusted the key once: the burst's only queries are the reads'
        assert app.test_client().get(f"/v1/resources/{resource_id}", headers=auth).status_code == 200
    queries: list[str] = []
    start = threading.Barrier(200)

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM bookings" in statement:
            queries.append(statement)

    def ask(n: int) -> int:
        client = apps[n % 2].test_client()
        start.wait()
        return client.get(
            f"/v1/resources/{resource_id}/availability", query_string=AVAILABILITY, headers=auth
        ).status_code

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        with ThreadPoolExecutor(200) as pool:
            statuses = list(pool.map(ask, range(200)))
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    assert statuses == [200] * 200
    assert len(queries) == (2 if settings.cache_url == "local" else 1), queries


def test_one_process_flights_share_a_load_and_its_error(store: tuple[Database, Settings]) -> None:
    _, settings = store
    cache = cache_for(settings)
    assert isinstance(cache, Cache)
    loads: list[int] = []
    go = threading.Barrier(50)

    def failing() -> Fill:
        loads.append(1)
        threading.Event().wait(0.2)
        raise LookupError("no such thing")

    def read(_: int) -> str:
        go.wait()
        try:
            cache.read(Scope("org", "thing"), "n", failing)
        except LookupError as error:
            return str(error)
        return "answered"

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(read, range(50)))
    assert outcomes == ["no such thing"] * 50
    assert len(loads) == 1
    assert cache.read(Scope("org", "thing"), "n", lambda: Fill(b"found", 60)) == b"found"  # errors are not kept


def test_with_redis_stopped_reads_and_writes_answer_from_the_database(
    sqlite_database: Database, tmp_path: Path, redis_of_its_own: tuple[subprocess.Popen[bytes], str]
) -> None:
    process, url = redis_of_its_own
    app = _worker(sqlite_database, _settings(sqlite_database, tmp_path, url))
    client = app.test_client()
    organization_id, auth = _organization(sqlite_database)
    resource_id = court(sqlite_database, organization_id)
    read: Callable[[], Any] = lambda: client.get(f"/v1/resources/{resource_id}", headers=auth)  # noqa: E731
    etag = read().headers["ETag"]
    assert _remaining(client, resource_id, auth)[3] == 1  # both cached now
    process.terminate()
    process.wait(timeout=10)
    renamed = client.patch(f"/v1/resources/{resource_id}", json={"name": "Renamed"}, headers=auth | {"If-Match": etag})
    placed = client.post("/v1/bookings", json=_booking(resource_id, 3), headers=auth | _once())
    answers = [read() for _ in range(5)]
    remaining = _remaining(client, resource_id, auth)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert (renamed.status_code, placed.status_code) == (200, 201)
    assert [(a.status_code, a.get_json()["name"]) for a in answers] == [(200, "Renamed")] * 5
    assert remaining[3] == 0
    assert "bookwell_cache_unavailable_total" in metrics
