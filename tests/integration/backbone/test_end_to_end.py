"""End to end with real brokers and JetStream: a booking's events reach their internal handler once,
and the stream once, carrying the request's id and trace context all the way."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest

from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.db import Database
from tests.conftest import NATS_URL
from tests.conftest import RABBITMQ_URL
from tests.conftest import REDIS_URL
from tests.support.backbone import BOOKWELL
from tests.support.backbone import Backbone
from tests.support.backbone import create_instruments
from tests.support.backbone import events
from tests.support.backbone import handler_runs
from tests.support.backbone import waiting_dead_letters

FREE_COURT = {
    "name": "Court 9",
    "timezone": "UTC",
    "slot_minutes": 60,
    "opening_hours": {
        day: [["00:00", "24:00"]]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    },
    "price_per_slot": {"amount": 0, "currency": "EUR"},
}


@pytest.fixture
def backbone(request: pytest.FixtureRequest, postgres_database: Database, tmp_path: Path) -> Iterator[Backbone]:
    create_instruments(postgres_database)
    running = Backbone(postgres_database, request.param, tmp_path, nats_url=NATS_URL)
    try:
        yield running
    finally:
        running.cleanup()


def book_and_cancel(database: Database) -> dict[str, str]:
    """Through the HTTP API: a resource, a booking of it, its cancellation; the request ids used."""
    settings = database.settings
    client = create_app(settings, container=bootstrap(settings, database=database)).test_client()
    _, token = identity_service.create_organization(
        uow=bootstrap(settings, database=database).unit_of_work(IdentityUnitOfWork)(), name="E2E"
    )
    ids = {step: f"e2e-{step}-{uuid.uuid4().hex[:8]}" for step in ("resource", "booking", "cancel")}

    def call(path: str, body: dict[str, object], step: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "X-Request-ID": ids[step], "Idempotency-Key": ids[step]}
        response = client.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        body_: dict[str, str] = response.get_json()
        return body_

    court = call("/v1/resources", FREE_COURT, "resource")["id"]
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    booking = call(
        "/v1/bookings",
        {
            "resource_id": court,
            "start": f"{day}T10:00:00Z",
            "end": f"{day}T11:00:00Z",
            "customer": {"name": "Ada", "email": "ada@example.com"},
        },
        "booking",
    )["id"]
    call(f"/v1/bookings/{booking}/cancel", {"reason": "rain"}, "cancel")
    return ids


@pytest.mark.postgres
@pytest.mark.parametrize("backbone", [REDIS_URL, RABBITMQ_URL], ids=["redis", "rabbitmq"], indirect=True)
def test_a_bookings_events_reach_their_handler_and_the_stream(backbone: Backbone) -> None:
    database = backbone.database
    backbone.start_all()
    request_ids = book_and_cancel(database)
    written = events(database)
    assert [e.type for e in written] == [
        "resource.created",
        "booking.created",
        "booking.confirmed",
        "booking.cancelled",
    ]
    backbone.wait_until(
        lambda: backbone.settled() and len(handler_runs(database)) >= len(written), 60, "every event handled"
    )

    # Internal handler: each event once, in a job that carried the request id of the request that wrote it.
    ran = handler_runs(database)
    assert Counter(run.event_id for run in ran) == Counter({e.id: 1 for e in written})
    by_event = {run.event_id: run.request_id for run in ran}
    assert {e.request_id for e in written} <= set(request_ids.values())
    assert all(by_event[e.id] == e.request_id for e in written)

    # JetStream: each event once, under its organization and type, with its id and trace context.
    messages = backbone.stream_messages()
    assert Counter(headers["Nats-Msg-Id"] for _, headers in messages) == Counter({e.id: 1 for e in written})
    for event in written:
        subject, headers = next(m for m in messages if m[1]["Nats-Msg-Id"] == event.id)
        assert subject == f"{backbone.subject_prefix}.{event.organization_id}.{event.type}"
        assert headers["Bookwell-Request-Id"] == event.request_id
        assert headers["traceparent"] == event.traceparent

    # `bookwell events tail` reads the same stream.
    tail = subprocess.run(
        [BOOKWELL, "events", "tail", "--from-start", "--count", str(len(written)), "--org", written[0].organization_id],
        env=backbone.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [line.split()[1:3] for line in tail.stdout.splitlines()] == [[e.type, e.id] for e in written]

    # One log line per job, Bookwell's: `job_done` names the delivery and its duration; Celery's own
    # per-task "received" and "succeeded" lines are off.
    worker_log = "\n".join(path.read_text() for path in backbone.logs.glob("worker-*.log"))
    done = [json.loads(line) for line in worker_log.splitlines() if '"job_done"' in line]
    delivered = {(line["event_id"], line["handler"]) for line in done if line["task"] == "bookwell.deliver"}
    assert {e.id for e in written} <= {event_id for event_id, _ in delivered}
    assert all(isinstance(line["duration_ms"], float) for line in done)
    assert " succeeded in " not in worker_log
    assert " received" not in worker_log

    assert waiting_dead_letters(database) == []
    assert backbone.stop_all() == {"relay": 0, "worker": 0, "scheduler": 0}, backbone.output()


@pytest.mark.parametrize("backbone", [RABBITMQ_URL], ids=["rabbitmq"], indirect=True)  # exclusive queues: RabbitMQ's
def test_two_workers_on_one_host_run_side_by_side(backbone: Backbone, tmp_path: Path) -> None:
    """Two `bookwell worker`s on one host and broker (to scale out, or two deployments) both run:
    no worker declares the host-named, exclusive remote-control queue the second would die on."""
    (tmp_path / "other").mkdir()
    other = Backbone(backbone.database, backbone.broker_url, tmp_path / "other")
    try:
        backbone.start("worker")
        other.start("worker")
        other.wait_ready("worker")  # fails at once if the second worker exits
        backbone.wait_ready("worker")
        time.sleep(2)  # and both are still there a moment later
        assert [running.processes["worker"].poll() for running in (backbone, other)] == [None, None]
    finally:
        other.cleanup()
