"""The in-process payments system the saga tests drive: the app, its registry, and the relay and
saga steps run on demand, as the worker would run them; and the provider simulator as a process."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy import update

from bookwell.app import create_app
from bookwell.booking.adapters.sql import bookings
from bookwell.bootstrap import bootstrap
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.messaging.outbox import outbox
from bookwell.platform.messaging.relay import Relay
from bookwell.platform.registry import Registry
from bookwell.platform.workflow.saga import saga_steps
from bookwell.platform.workflow.saga import sagas
from tests.api.conftest import Api
from tests.api.test_bookings import at
from tests.api.test_bookings import key
from tests.api.test_bookings import resource
from tests.support.provider_sim import ProviderSim
from tests.support.redis_server import own_redis
from tests.support.webhooks import attempt_at_once

PRICE = {"amount": 2500, "currency": "EUR"}


def eur(cents: int) -> dict[str, object]:
    """Money in the tests' currency, as the API writes it."""
    return {"amount": cents, "currency": "EUR"}


@dataclass
class System:
    api: Api
    container: Registry

    @property
    def database(self) -> Database:
        return self.container.database

    def relay(self) -> int:
        """One relay pass; the handlers run at once, as the worker would run them."""
        container = self.container
        deliver = container.jobs.deliver
        return Relay(
            container.database, container.subscriptions, lambda d, _h: deliver(d.event_id, d.handler)
        ).relay_once()

    def step(self) -> int:
        """One relay pass and every due saga step; how much was done."""
        done = self.relay()
        for saga_id in self.container.sagas.due():
            self.container.sagas.advance(saga_id)
            done += 1
        return done

    def lapse_hold(self, booking_id: str) -> None:
        with self.database.engine.begin() as connection:
            connection.execute(
                update(bookings)
                .where(bookings.c.id == booking_id)
                .values(hold_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )

    def drive(self, seconds: float = 10.0) -> None:
        """Step until nothing is left to do."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.step() and not self._running_sagas():
                return
            time.sleep(0.01)
        raise AssertionError("the system did not settle")

    def _running_sagas(self) -> int:
        with self.database.engine.connect() as connection:
            return len(connection.execute(select(sagas.c.id).where(sagas.c.status == "running")).all())

    def events(self) -> list[str]:
        with self.database.engine.connect() as connection:
            return list(connection.execute(select(outbox.c.type).order_by(outbox.c.seq)).scalars())

    def book(self, token: str, days: int = 3, **resource_fields: Any) -> dict[str, Any]:
        court = resource(self.api, price_per_slot=PRICE, **resource_fields)
        body = {
            "resource_id": court,
            "start": at(days, 10),
            "end": at(days, 11),
            "customer": {"name": "Ada", "email": "ada@example.com"},
            "payment": {"token": token},
        }
        response = self.api.post("/v1/bookings", json=body, headers=key())
        assert response.status_code == 201, response.get_data(as_text=True)
        booking: dict[str, Any] = response.get_json()
        assert booking["status"] == "pending"
        return booking

    def booking(self, booking_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"/v1/bookings/{booking_id}").get_json()
        return found

    def payment_of(self, booking_id: str) -> dict[str, Any]:
        (payment,) = self.api.get(f"/v1/payments?booking_id={booking_id}").get_json()["data"]
        assert self.api.get(f"/v1/payments/{payment['id']}").get_json() == payment
        return dict(payment)

    def steps(self, booking_id: str) -> list[tuple[str, str]]:
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(saga_steps.c.step, saga_steps.c.outcome)
                .join(sagas, sagas.c.id == saga_steps.c.saga_id)
                .where(sagas.c.subject_id == booking_id)
                .order_by(saga_steps.c.at, saga_steps.c.id)
            )
            return [(row.step, row.outcome) for row in rows]


@pytest.fixture
def system(database: Database) -> System:
    settings = database.settings.model_copy(
        update={"job_backoff_base_s": 0.01, "job_backoff_cap_s": 0.05, "webhook_allowed_networks": "127.0.0.0/8"}
    )
    container = bootstrap(settings, database=database)
    attempt_at_once(container)
    app: Flask = create_app(settings, container=container)
    _, token = identity_service.create_organization(uow=container.unit_of_work(IdentityUnitOfWork)(), name="Pay")
    return System(Api(app.test_client(), token), container)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ProviderSim]:
    """The provider simulator as a process of the test's own (`bookwell provider-sim`); a module may
    name its own `provider` (the adapter's tests do)."""
    sim = ProviderSim.start(tmp_path / "provider-sim.log")
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def redis_of_its_own(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with own_redis(tmp_path) as server:
        yield server
