"""Metrics from the real processes: Gunicorn's merged `/metrics` and the relay's, worker's and
scheduler's own ports, after a scripted run on PostgreSQL and RabbitMQ with the provider simulator.

The counters equal what the script did: requests per route and status, bookings per final status,
money captured and refunded, provider calls; the backlog gauges read empty once the work is done;
and every family the SLO rules and dashboards are built on is served by one of the processes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from tests.integration.payments.test_chaos import running_sagas
from tests.support.backbone import ROOT
from tests.support.booking import court
from tests.support.gunicorn import whole_system
from tests.support.provider_sim import ProviderSim

PRICE = 1200
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# Point 2 of the observability issue, family by family, and the process that serves it.
FAMILIES = {
    "api": [
        "bookwell_http_requests",
        "bookwell_http_request_duration_seconds",
        "bookwell_http_requests_in_flight",
        "bookwell_http_threads",
        "bookwell_db_pool_connections_in_use",
        "bookwell_db_pool_connections_max",
        "bookwell_db_pool_checkouts_waiting",
        "bookwell_idempotency_keys",
    ],
    "relay": ["bookwell_events_relayed", "bookwell_bookings"],
    "worker": [
        "bookwell_jobs",
        "bookwell_job_duration_seconds",
        "bookwell_event_handling_delay_seconds",
        "bookwell_saga_duration_seconds",
        "bookwell_dependency_calls",
        "bookwell_dependency_call_duration_seconds",
        "bookwell_circuit_breaker_state",
        "bookwell_payment_amount_minor",
        "bookwell_db_pool_connections_in_use",
    ],
    "scheduler": [
        "bookwell_outbox_unsent_events",
        "bookwell_outbox_oldest_unsent_age_seconds",
        "bookwell_inbox_due_deliveries",
        "bookwell_inbox_oldest_due_age_seconds",
        "bookwell_dead_letters",
        "bookwell_sagas_running",
        "bookwell_saga_oldest_running_age_seconds",
        "bookwell_job_queue_depth",
        "bookwell_webhook_deliveries_pending",
        "bookwell_webhook_deliveries_due",
        "bookwell_webhook_oldest_due_age_seconds",
    ],
}


@dataclass(frozen=True)
class Scrape:
    declared: set[str]  # every family named, samples or not (as the parser names them: no `_total`)
    sampled: set[str]  # the families with samples
    samples: Samples  # every sample by name and labels


def scrape(url: str) -> Scrape:
    """What one `/metrics` answer serves."""
    answer = httpx.get(url, timeout=10)
    answer.raise_for_status()
    scraped = Scrape(set(), set(), {})
    for family in text_string_to_metric_families(answer.text):
        scraped.declared.add(family.name)
        if family.samples:
            scraped.sampled.add(family.name)
        for sample in family.samples:
            scraped.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return scraped


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when it was never counted); `labels` must be all of its labels."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.postgres
def test_every_process_serves_its_families_and_the_counters_equal_the_script(
    postgres_database: Database, provider: ProviderSim, tmp_path: Path
) -> None:
    database = postgres_database
    with whole_system(database, tmp_path, provider.url, BOOKWELL_SAGA_SWEEP_EVERY_S="1") as (backbone, port):
        did = run_script(database, f"http://127.0.0.1:{port}")
        backbone.wait_for_drain(
            lambda: running_sagas(database) + backbone.unsettled(), "every saga and delivery to finish"
        )
        served = {"api": scrape(f"http://127.0.0.1:{port}/metrics")}
        for name in ("relay", "worker", "scheduler"):
            served[name] = scrape(backbone.metrics_url(name))

    for process, families in FAMILIES.items():
        missing = sorted(set(families) - served[process].sampled)
        assert not missing, f"{process} serves no samples of {missing}"

    api = served["api"].samples
    for (method, route, status), count in did.items():
        counted = value(api, "bookwell_http_requests_total", method=method, route=route, status=str(status))
        assert counted == count, (method, route, status, counted, count)
    assert value(api, "bookwell_idempotency_keys_total", outcome="replayed") == 1
    assert value(api, "bookwell_http_threads") == 2 * 4  # the default 2 workers of 4 threads

    relay = served["relay"].samples
    assert value(relay, "bookwell_bookings_total", status="confirmed") == 7  # 4 free, 3 paid
    assert value(relay, "bookwell_bookings_total", status="cancelled") == 2  # 1 free, 1 paid
    assert value(relay, "bookwell_events_relayed_total", type="booking.created") == 7

    worker = served["worker"].samples
    assert value(worker, "bookwell_payment_amount_minor_total", kind="captured", currency="EUR") == 3 * PRICE
    assert value(worker, "bookwell_payment_amount_minor_total", kind="refunded", currency="EUR") == PRICE
    charges = value(worker, "bookwell_dependency_calls_total", dependency="payment_provider", outcome="succeeded")
    assert charges == 3 + 1  # three charges and one refund, each succeeded at once
    assert value(worker, "bookwell_circuit_breaker_state", dependency="payment_provider") == 0
    ended = sum(v for (name, _), v in worker.items() if name == "bookwell_saga_duration_seconds_count")
    assert ended == 3 + 1  # the three charging sagas and the refund's

    # Every series the SLO rules read is one these processes serve, bucket bounds included; every
    # family a dashboard reads is one they declare.
    names = {(name, dict(labels).get("le")) for scraped in served.values() for name, labels in scraped.samples}
    rules = (ROOT / "ops" / "prometheus" / "slo-rules.yaml").read_text()
    for metric, le in set(re.findall(r'\b(bookwell_[a-z0-9_]+)(?:\{[^}]*?le="([^"]+)")?', rules)):
        assert (metric, le or None) in names or (not le and any(n == metric for n, _ in names)), (metric, le)
    declared = set().union(*(scraped.declared for scraped in served.values()))
    boards = " ".join(path.read_text() for path in (ROOT / "ops" / "grafana").glob("*.json"))
    read = set(re.findall(r"\b(bookwell_[a-z0-9_]+)", boards))
    assert len(read) > 20
    for metric in read:
        assert re.sub(r"_(total|bucket|count|sum)$", "", metric) in declared, f"a dashboard reads {metric}, not served"

    scheduler = served["scheduler"].samples
    for gauge in ("bookwell_outbox_unsent_events", "bookwell_sagas_running", "bookwell_dead_letters"):
        assert value(scheduler, gauge) == 0, gauge
    for queue in (backbone.queue, backbone.queue + ".periodic"):  # both read (a failed probe leaves one out)
        assert scheduler[("bookwell_job_queue_depth", frozenset({("queue", queue)}))] == 0, queue


def run_script(database: Database, api: str) -> Counter[tuple[str, str, int]]:
    """Book, replay, read and cancel over HTTP; what was answered, by method, route template and status."""
    organization, token = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Acme")
    free = court(database, organization.id, capacity=10, name="Free court")
    paid = court(database, organization.id, price=PRICE, capacity=10, name="Paid court")
    did: Counter[tuple[str, str, int]] = Counter()
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:

        def post(path: str, route: str, body: dict[str, object], key: str | None = None) -> httpx.Response:
            answer = client.post(path, json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})
            did["POST", route, answer.status_code] += 1
            return answer

        def book(resource_id: str, hour: int, key: str | None = None) -> str:
            slot = start + timedelta(hours=hour)
            body = {
                "resource_id": resource_id,
                "start": slot.isoformat(),
                "end": (slot + timedelta(hours=1)).isoformat(),
                "customer": {"name": "Ada", "email": "ada@example.com"},
                **({"payment": {"token": "tok_ok"}} if resource_id == paid else {}),
            }
            answer = post("/v1/bookings", "/v1/bookings", body, key)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["id"])

        free_bookings = [book(free, hour) for hour in range(3)] + [book(free, 5, key="same")]
        assert book(free, 5, key="same") == free_bookings[-1]  # the first answer, replayed
        paid_bookings = [book(paid, hour) for hour in range(3)]

        def get(path: str, route: str) -> httpx.Response:
            answer = client.get(path)
            did["GET", route, answer.status_code] += 1
            return answer

        def wait_confirmed(booking_id: str) -> str:
            for _ in range(600):
                status = get(f"/v1/bookings/{booking_id}", "/v1/bookings/<booking_id>").json()["status"]
                if status != "pending":
                    assert status == "confirmed", status
                    return booking_id
                time.sleep(0.1)
            raise AssertionError(f"booking {booking_id} still pending after a minute")

        for _ in range(5):
            assert get(f"/v1/resources/{free}", "/v1/resources/<resource_id>").status_code == 200
        assert get("/v1/resources/res_missing", "/v1/resources/<resource_id>").status_code == 404
        for booking_id in (free_bookings[0], wait_confirmed(paid_bookings[0])):
            answer = post(f"/v1/bookings/{booking_id}/cancel", "/v1/bookings/<booking_id>/cancel", {"reason": "rain"})
            assert answer.status_code == 200, answer.text
        for booking_id in paid_bookings[1:]:
            wait_confirmed(booking_id)
    return did
