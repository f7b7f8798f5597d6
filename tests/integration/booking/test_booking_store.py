"""Bookings on real databases: a held lock is a quick 409, lapsed holds expire, the second wall holds."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import partial

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bookwell.booking import service
from bookwell.booking.adapters.sql import SqlBookingUnitOfWork
from bookwell.booking.adapters.sql import bookings
from bookwell.catalog import service as catalog_service
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.catalog.adapters.sql import resources
from bookwell.cli import main as cli
from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.kernel.errors import Busy
from bookwell.platform.messaging.outbox import outbox
from tests.support.booking import TOMORROW
from tests.support.booking import request
from tests.support.booking import setup


def test_a_lock_held_elsewhere_is_a_quick_busy_not_a_hang(database: Database) -> None:
    org, court = setup(database)
    impatient = Database(
        database.settings.model_copy(update={"db_lock_timeout_ms": 200, "sqlite_busy_timeout_ms": 200})
    )
    try:
        with database.engine.connect() as holder:
            holder.begin()  # on SQLite this takes the write lock; on PostgreSQL, lock the row:
            holder.execute(select(resources.c.id).where(resources.c.id == court).with_for_update())
            holder.execute(update(resources).where(resources.c.id == court).values(version=resources.c.version))
            with pytest.raises(Busy) as error:
                service.place_booking(uow=SqlBookingUnitOfWork(impatient), request=request(org, court))
            assert error.value.retry_after == 1
            holder.rollback()
    finally:
        impatient.dispose()
    assert service.place_booking(uow=SqlBookingUnitOfWork(database), request=request(org, court)).status == "confirmed"


def test_expired_holds_are_marked_by_the_command(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    org, court = setup(database, price=500)
    uow = partial(SqlBookingUnitOfWork, database)
    lapsed = service.place_booking(uow=uow(), request=request(org, court, 0, token="tok_ok"))
    live = service.place_booking(uow=uow(), request=request(org, court, 1, token="tok_ok"))
    with database.engine.begin() as connection:
        connection.execute(
            update(bookings)
            .where(bookings.c.id == lapsed.id)
            .values(hold_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    monkeypatch.setenv("BOOKWELL_DATABASE_URL", database.settings.database_url)
    result = CliRunner().invoke(cli, ["holds", "expire"])
    assert result.exit_code == 0, result.output
    assert "expired 1 hold(s)" in result.output
    statuses = {
        b.id: b.status
        for b in (
            service.get_booking(uow=uow(readonly=True), organization_id=org, booking_id=i) for i in (lapsed.id, live.id)
        )
    }
    assert statuses == {lapsed.id: "expired", live.id: "pending"}
    with database.engine.connect() as connection:
        types = connection.execute(select(outbox.c.type).where(outbox.c.aggregate_id == lapsed.id)).scalars()
        assert sorted(types) == ["booking.created", "booking.expired"]


def test_a_lapsed_hold_never_blocks_even_before_it_is_marked(database: Database) -> None:
    org, court = setup(database, price=500)
    uow = partial(SqlBookingUnitOfWork, database)
    first = service.place_booking(uow=uow(), request=request(org, court, token="tok_ok"))
    with database.engine.begin() as connection:
        connection.execute(
            update(bookings)
            .where(bookings.c.id == first.id)
            .values(hold_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    second = service.place_booking(uow=uow(), request=request(org, court, token="tok_ok"))
    assert second.status == "pending"
    assert service.get_booking(uow=uow(readonly=True), organization_id=org, booking_id=first.id).status == "expired"


@pytest.mark.postgres
def test_the_exclusion_constraint_refuses_an_overlap_that_bypasses_the_lock(postgres_database: Database) -> None:
    org, court = setup(postgres_database)
    uow = partial(SqlBookingUnitOfWork, postgres_database)
    taken = service.place_booking(uow=uow(), request=request(org, court))
    with pytest.raises(IntegrityError, match="ex_bookings_exclusive_no_overlap"), uow() as raw:
        clone = service.get_booking(uow=uow(readonly=True), organization_id=org, booking_id=taken.id)
        clone.id = "bkg_" + "1" * 26
        raw.bookings.add(clone)  # straight to the table: no lock, no capacity check
        raw.commit()


def test_a_busy_answer_says_when_to_retry_and_is_not_stored(database: Database) -> None:
    from bookwell.app import create_app
    from bookwell.bootstrap import bootstrap

    _org, court = setup(database)
    impatient = Database(
        database.settings.model_copy(update={"db_lock_timeout_ms": 200, "sqlite_busy_timeout_ms": 200})
    )
    try:
        app = create_app(impatient.settings, container=bootstrap(impatient.settings, database=impatient))
        _, token = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Busy")
        identity = identity_service.authenticate(uow=SqlIdentityUnitOfWork(database, readonly=True), token=token)
        assert identity is not None
        other_court = catalog_service.create_resource(
            uow=SqlCatalogUnitOfWork(database),
            organization_id=identity.principal.organization_id,
            fields={
                "name": "C",
                "timezone": "UTC",
                "slot_minutes": 60,
                "opening_hours": {
                    "monday": [["00:00", "24:00"]],
                    "tuesday": [["00:00", "24:00"]],
                    "wednesday": [["00:00", "24:00"]],
                    "thursday": [["00:00", "24:00"]],
                    "friday": [["00:00", "24:00"]],
                    "saturday": [["00:00", "24:00"]],
                    "sunday": [["00:00", "24:00"]],
                },
                "price_per_slot": {"amount": 0, "currency": "EUR"},
            },
        )
        body = {
            "resource_id": other_court.id,
            "start": TOMORROW.isoformat(),
            "end": (TOMORROW + timedelta(hours=1)).isoformat(),
            "customer": {"name": "A", "email": "a@b.co"},
        }
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "busy-1"}
        client = app.test_client()
        with database.engine.connect() as holder:
            holder.begin()
            holder.execute(select(resources.c.id).where(resources.c.id == other_court.id).with_for_update())
            holder.execute(
                update(resources).where(resources.c.id == other_court.id).values(version=resources.c.version)
            )
            busy = client.post("/v1/bookings", json=body, headers=headers)
            holder.rollback()
        assert (busy.status_code, busy.get_json()["code"], busy.headers.get("Retry-After")) == (
            409,
            "resource_busy",
            "1",
        )
        retried = client.post("/v1/bookings", json=body, headers=headers)
        assert retried.status_code == 201
        assert "Idempotent-Replayed" not in retried.headers
    finally:
        impatient.dispose()
    assert court  # the first resource of setup() stays untouched
