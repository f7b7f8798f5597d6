"""One trace from the HTTP request to the payment provider, under the real processes: Gunicorn, relay,
worker and scheduler on PostgreSQL and RabbitMQ, the provider simulator, exporting over OTLP/HTTP
to a receiver of the test's own (tests/support/otlp.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from tests.support.booking import court
from tests.support.gunicorn import whole_system
from tests.support.otlp import Receiver
from tests.support.otlp import Span
from tests.support.otlp import receiver
from tests.support.provider_sim import ProviderSim

SERVER, CLIENT = 2, 3  # OTLP span kinds


def wait_for(condition: Callable[[], bool], what: str, seen: Callable[[], str] = str, timeout: float = 60) -> None:
    """Wait for `condition`; on a timeout, say what was `seen` by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{seen()}")


@pytest.mark.postgres
def test_one_trace_spans_the_request_its_sql_the_relay_the_saga_step_and_the_provider_call(
    postgres_database: Database, provider: ProviderSim, tmp_path: Path
) -> None:
    database = postgres_database
    with receiver() as otlp:
        tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        with whole_system(database, tmp_path, provider.url, **tracing) as (_, port):
            booking_id = book(database, f"http://127.0.0.1:{port}")
            wait_for(lambda: server_span(otlp, booking_id) is not None, "the request's server span")
            request = server_span(otlp, booking_id)
            assert request is not None
            trace_id = request.trace_id
            wait_for(lambda: complete(otlp, trace_id), f"the whole trace {trace_id}", lambda: described(otlp, trace_id))

    spans = otlp.trace(trace_id)
    assert {span.service for span in spans} >= {"bookwell-api", "bookwell-worker"}
    sql = [s for s in spans if s.service == "bookwell-api" and "db.system" in s.attributes]
    assert sql, "no SQL span in the request's trace:\n" + described(otlp, trace_id)
    published = [s for s in otlp.all() if s.name == "bookwell.relay publish" and trace_id in s.links]
    assert published, "no relay publish linked to the request"
    assert published[0].service == "bookwell-relay"
    assert trace_id in provider.log_path.read_text(), "the provider simulator did not log the trace"


def complete(otlp: Receiver, trace_id: str) -> bool:
    """The saga step run by the worker, the provider call under it, and the relay's linked publish."""
    spans = otlp.trace(trace_id)
    step = any(s.service == "bookwell-worker" and s.name == "saga booking charge" for s in spans)
    call = any(
        s.service == "bookwell-worker" and s.kind == CLIENT and "/v1/charges" in str(s.attributes) for s in spans
    )
    linked = any(s.name == "bookwell.relay publish" and trace_id in s.links for s in otlp.all())
    return step and call and linked


def server_span(otlp: Receiver, booking_id: str) -> Span | None:
    """The API's span of the POST that created the booking (the one whose trace the booking's GETs are not in)."""
    posts = [s for s in otlp.all() if s.kind == SERVER and s.attributes.get("http.route") == "/v1/bookings"]
    return posts[0] if len(posts) == 1 else None


def described(otlp: Receiver, trace_id: str) -> str:
    return "\n".join(f"{s.service} {s.kind} {s.name}" for s in otlp.trace(trace_id))


def book(database: Database, api: str) -> str:
    """One priced booking over HTTP, waited for until its saga confirmed it; its id."""
    organization, token = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Acme")
    court_id = court(database, organization.id, price=1200)
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        f"{api}/v1/bookings",
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "resource_id": court_id,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "customer": {"name": "Ada", "email": "ada@example.com"},
            "payment": {"token": "tok_ok"},
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    booking_id = str(created.json()["id"])
    wait_for(
        lambda: httpx.get(f"{api}/v1/bookings/{booking_id}", headers=headers).json()["status"] == "confirmed",
        "the saga to confirm the booking",
    )
    return booking_id
