"""On PostgreSQL, with a seeded dataset and the planner free to choose, every statement the booking
list (each filter, first and deep pages), a booking's read and availability send reads `bookings`
through an index: `EXPLAIN (ANALYZE)` of the very statements the API ran, with their parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event

from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.platform.db import Database
from bookwell_tools.seed import seed

INDEXED = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.postgres
def test_every_list_filter_page_and_availability_reads_bookings_by_an_index(postgres_database: Database) -> None:
    made = seed(postgres_database, organizations=10, resources=50, bookings_count=60_000)  # 6,000 each
    organization_id, token = made.organizations[0]
    court = next(resource for owner, resource, _ in made.resources if owner == organization_id)
    app = create_app(
        postgres_database.settings, container=bootstrap(postgres_database.settings, database=postgres_database)
    )
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    day = (datetime.now(UTC) + timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    span = {"start_from": day.isoformat(), "start_to": (day + timedelta(days=1)).isoformat()}
    deep = "/v1/bookings?limit=100"
    for _ in range(20):  # 2,000 bookings into the organization's 6,000
        answer = client.get(deep, headers=auth)
        assert answer.status_code == 200, answer.get_json()
        link = urlsplit(answer.headers["Link"].split(";", 1)[0].strip("<> "))
        deep = f"{link.path}?{link.query}"
    paths = {
        "first page": "/v1/bookings?limit=20",
        "deep page": deep,
        "by resource": f"/v1/bookings?resource_id={court}",
        "by status, common": "/v1/bookings?status=confirmed",
        "by status, rare": "/v1/bookings?status=pending",
        "by customer": "/v1/bookings?" + urlencode({"customer_email": "customer7@example.com"}),
        "by start": "/v1/bookings?" + urlencode(span),
        "by resource and status": f"/v1/bookings?resource_id={court}&status=cancelled",
        "by resource and start": f"/v1/bookings?resource_id={court}&" + urlencode(span),
        "availability, a day": f"/v1/resources/{court}/availability?"
        + urlencode({"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}),
    }
    some_booking = client.get(paths["by resource"], headers=auth).get_json()["data"][0]["id"]
    paths["a booking"] = f"/v1/bookings/{some_booking}"

    statements: list[tuple[str, str, Any]] = []
    current = [""]

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM bookings" in statement:
            statements.append((current[0], statement, parameters))

    event.listen(postgres_database.engine, "before_cursor_execute", note)
    try:
        for name, path in paths.items():
            current[0] = name
            answer = client.get(path, headers=auth)
            assert answer.status_code == 200, (name, answer.get_json())
    finally:
        event.remove(postgres_database.engine, "before_cursor_execute", note)
    assert {name for name, _, _ in statements} == set(paths)  # each path read bookings at least once

    # Served by an index: each read of `bookings` goes through one, and what the index found and a
    # filter then dropped is at most one resource's bookings (a combined filter narrows by one of
    # its columns), never a scan of the organization's.
    per_resource = 60_000 // 50
    unindexed = []
    with postgres_database.engine.connect() as connection:
        for name, statement, parameters in statements:
            [[plan]] = connection.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).all()
            scans = [node for node in _nodes(plan[0]["Plan"]) if node.get("Relation Name") == "bookings"]
            if not scans or any(
                node["Node Type"] not in INDEXED or node.get("Rows Removed by Filter", 0) > per_resource
                for node in scans
            ):
                unindexed.append((name, statement, json.dumps(plan[0]["Plan"], indent=1)))
    assert not unindexed, unindexed
