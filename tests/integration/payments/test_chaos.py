"""Payments under a flaky, dead, or interrupted provider: relay, worker and scheduler as processes on
PostgreSQL and Redis, charging the provider simulator over HTTP (`bookwell provider-sim`).

Whatever happens, at the end: every confirmed booking holds exactly one capture, no failed or
expired booking holds a capture that was not refunded, and the simulator's ledger agrees charge
for charge with Bookwell's payments table.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from bookwell.booking import service as booking_service
from bookwell.booking.adapters.sql import SqlBookingUnitOfWork
from bookwell.booking.adapters.sql import bookings
from bookwell.payments.adapters.sql import payments
from bookwell.payments.adapters.sql import refunds
from bookwell.platform.db import Database
from bookwell.platform.workflow.saga import sagas
from tests.conftest import REDIS_URL
from tests.support.backbone import Backbone
from tests.support.backbone import create_instruments
from tests.support.booking import request
from tests.support.booking import setup
from tests.support.provider_sim import ProviderSim


@pytest.fixture
def backbone(postgres_database: Database, provider: ProviderSim, tmp_path: Path) -> Iterator[Backbone]:
    create_instruments(postgres_database)
    running = Backbone(
        postgres_database,
        REDIS_URL,
        tmp_path,
        extra_env={
            "BOOKWELL_PAYMENT_PROVIDER": "http",
            "BOOKWELL_PAYMENT_PROVIDER_URL": provider.url,
            "BOOKWELL_PAYMENT_TIMEOUT_S": "0.5",
            "BOOKWELL_PAYMENT_RETRY_ATTEMPTS": "2",
            "BOOKWELL_PAYMENT_BREAKER_FAIL_MAX": "5",
            "BOOKWELL_PAYMENT_BREAKER_RESET_S": "2",
            "BOOKWELL_JOB_BACKOFF_BASE_S": "0.2",
            "BOOKWELL_JOB_BACKOFF_CAP_S": "2",
            "BOOKWELL_SAGA_SWEEP_EVERY_S": "1",
            "BOOKWELL_SAGA_LEASE_S": "5",
        },
    )
    try:
        yield running
    finally:
        running.cleanup()


def book(database: Database, count: int) -> list[str]:
    """`count` priced bookings of one slot on a roomy court, made one after another; their ids."""
    organization_id, court_id = setup(database, price=1200, capacity=1000)
    return [
        booking_service.place_booking(
            uow=SqlBookingUnitOfWork(database), request=request(organization_id, court_id, 48, token="tok_ok")
        ).id
        for _ in range(count)
    ]


def running_sagas(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).where(sagas.c.status == "running")).scalar_one())


def unfinished(backbone: Backbone) -> int:
    """Sagas still running, events unsent and deliveries pending: the work left."""
    return running_sagas(backbone.database) + backbone.unsettled()


def check_consistency(database: Database, provider: ProviderSim, booking_ids: list[str]) -> Counter[str]:
    """The invariants of the module's docstring; the bookings' final statuses."""
    with database.engine.connect() as connection:
        status = dict(
            connection.execute(select(bookings.c.id, bookings.c.status).where(bookings.c.id.in_(booking_ids))).all()
        )
        paid = {row.booking_id: row for row in connection.execute(select(payments))}
        refunded = Counter()
        for row in connection.execute(select(refunds.c.payment_id, refunds.c.amount, refunds.c.status)):
            if row.status == "succeeded":
                refunded[row.payment_id] += row.amount
    ledger = provider.ledger()
    charges = Counter(charge["idempotency_key"] for charge in ledger["charges"] if charge["status"] == "succeeded")
    assert all(n == 1 for n in charges.values()), "a payment was charged twice"
    captured_here = {
        f"charge-{p.id}" for p in paid.values() if p.status in ("captured", "partially_refunded", "refunded")
    }
    assert set(charges) == captured_here, "the provider's ledger and the payments table disagree"
    for booking_id in booking_ids:
        payment = paid[booking_id]
        if status[booking_id] == "confirmed":
            assert payment.status == "captured"
            assert f"charge-{payment.id}" in charges
        else:
            assert status[booking_id] in ("failed", "expired"), status[booking_id]
            if payment.status != "failed":
                assert refunded[payment.id] == payment.amount, "a capture of a booking that did not happen was kept"
    ledger_refunds = Counter()
    for refund in ledger["refunds"]:
        if refund["status"] == "succeeded":
            ledger_refunds[refund["idempotency_key"]] += 1
    assert all(n == 1 for n in ledger_refunds.values()), "a refund was paid twice"
    return Counter(status.values())


@pytest.mark.postgres
def test_thirty_percent_of_provider_calls_failing_or_timing_out(backbone: Backbone, provider: ProviderSim) -> None:
    provider.set_faults(error_rate=0.15, timeout_rate=0.15, timeout_s=1.0, seed=7)
    database = backbone.database
    backbone.start_all()
    made = book(database, 200)
    backbone.wait_for_drain(lambda: unfinished(backbone), "every saga to finish")
    statuses = check_consistency(database, provider, made)
    assert statuses == Counter({"confirmed": 200}), statuses  # faults delay, never lose or double, a charge
    stopped = backbone.stop_all()
    assert stopped == {"relay": 0, "worker": 0, "scheduler": 0}, (stopped, backbone.output()[-3000:])


@pytest.mark.postgres
def test_a_full_outage_opens_the_breaker_and_bookings_complete_after_it(
    backbone: Backbone, provider: ProviderSim
) -> None:
    provider.set_faults(outage=True)
    database = backbone.database
    backbone.start_all()
    made = book(database, 20)
    # The breaker opens after its 5 failures; from then on, calls stop reaching the provider.
    backbone.wait_until(lambda: backbone.logged("payment provider circuit breaker is open"), 60, "the breaker")
    reached = provider.request_count()
    # Within its threshold: 5 failures open it; at most the worker's other threads' calls were in flight.
    assert reached <= 5 + database.settings.worker_concurrency, reached
    time.sleep(1.5)  # less than the breaker's reset (2 s): an open breaker lets nothing through
    assert provider.request_count() == reached
    assert running_sagas(database) > 0
    provider.set_faults(outage=False)
    backbone.wait_for_drain(lambda: unfinished(backbone), "recovery")
    assert check_consistency(database, provider, made) == Counter({"confirmed": 20})
    assert backbone.logged('"new_state": "closed"'), "the breaker closed again"
    stopped = backbone.stop_all()
    assert stopped == {"relay": 0, "worker": 0, "scheduler": 0}, (stopped, backbone.output()[-3000:])


@pytest.mark.postgres
def test_kill_9_of_the_worker_mid_charge_neither_doubles_a_charge_nor_strands_a_saga(
    backbone: Backbone, provider: ProviderSim
) -> None:
    # Every charge takes a while, and a fifth time out after acting: kills land mid-call.
    provider.set_faults(latency_ms=150, timeout_rate=0.2, timeout_s=1.0, seed=11)
    database = backbone.database
    backbone.start_all()
    made = book(database, 60)
    rng = random.Random()
    for _ in range(20):
        backbone.wait_ready("worker")
        time.sleep(rng.uniform(0.1, 1.0))
        backbone.kill("worker", signal.SIGKILL)
        backbone.start("worker")
    provider.set_faults(latency_ms=0, timeout_rate=0.0)
    # A dead worker's saga lease lapses (5 s here, 60 s by default), then the sweep finds it again.
    backbone.wait_for_drain(lambda: unfinished(backbone), "every saga to finish")
    assert check_consistency(database, provider, made) == Counter({"confirmed": 60})
    stopped = backbone.stop_all()
    assert stopped == {"relay": 0, "worker": 0, "scheduler": 0}, (stopped, backbone.output()[-3000:])
