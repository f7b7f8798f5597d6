"""The engine settings and the unit of work's guarantees, on each database."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from sqlalchemy import text

from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.catalog.adapters.sql import resources
from bookwell.catalog.domain import create_resource
from bookwell.catalog.events import resource_event
from bookwell.catalog.presenters import v1
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.identity.domain import create_organization
from bookwell.platform import db
from bookwell.platform.db import Database
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.context import bound
from bookwell.platform.kernel.errors import Unavailable
from bookwell.platform.messaging.outbox import outbox

FIELDS = {
    "name": "Room",
    "timezone": "Europe/Paris",
    "slot_minutes": 30,
    "opening_hours": {"tuesday": [["09:00", "18:00"]]},
    "price_per_slot": {"amount": 900, "currency": "EUR"},
}


def organization(database: Database) -> str:
    org = create_organization("Acme", utcnow())
    with SqlIdentityUnitOfWork(database) as uow:
        uow.organizations.add(org)
        uow.commit()
    return org.id


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert (
            connection.execute(text("PRAGMA busy_timeout")).scalar() == sqlite_database.settings.sqlite_busy_timeout_ms
        )


@pytest.mark.postgres
def test_postgresql_sessions_carry_the_statement_timeout(postgres_database: Database) -> None:
    with postgres_database.engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "5s"
        assert connection.execute(text("SHOW lock_timeout")).scalar() == "3s"
        assert connection.execute(text("SHOW application_name")).scalar() == "bookwell"


@pytest.mark.postgres
@pytest.mark.parametrize("idle_long_enough", [True, False])
def test_a_pooled_connection_dropped_while_idle_is_replaced_before_use(
    postgres_database: Database, monkeypatch: pytest.MonkeyPatch, idle_long_enough: bool
) -> None:
    """Pinged when idle past `PING_AFTER_IDLE_S` (here: always, or never): a connection the server
    dropped is replaced and the work goes through; one not pinged fails as a 503 the client retries."""
    own = Database(postgres_database.settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0}))
    try:
        with own.engine.connect() as connection:
            dropped = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with postgres_database.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
            deadline = time.monotonic() + 30
            while admin.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": dropped}).first():
                assert time.monotonic() < deadline, "the terminated backend did not go away"
                admin.rollback()  # a new snapshot of pg_stat_activity
                time.sleep(0.01)
        monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0 if idle_long_enough else 1e9)
        uow = SqlUnitOfWork(own, readonly=True)
        if idle_long_enough:
            with uow:
                assert uow.connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != dropped
        else:
            with pytest.raises(Unavailable), uow:
                uow.connection.execute(text("SELECT 1"))
    finally:
        own.dispose()


def test_nothing_survives_a_unit_of_work_that_did_not_commit(database: Database) -> None:
    org_id = organization(database)
    resource = create_resource(organization_id=org_id, fields=FIELDS, now=utcnow())
    with pytest.raises(RuntimeError, match="boom"), SqlCatalogUnitOfWork(database) as uow:
        uow.resources.add(resource)
        uow.events.add(resource_event(resource, "created"))
        raise RuntimeError("boom")
    with database.engine.connect() as connection:
        assert connection.execute(select(resources)).all() == []
        assert connection.execute(select(outbox)).all() == []


def test_a_change_and_its_event_commit_together_with_the_request_context(database: Database) -> None:
    org_id = organization(database)
    resource = create_resource(organization_id=org_id, fields=FIELDS, now=utcnow())
    context = RequestContext(request_id="req-1", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    with bound(context), SqlCatalogUnitOfWork(database) as uow:
        uow.resources.add(resource)
        uow.events.add(resource_event(resource, "created"))
        uow.commit()
    with SqlCatalogUnitOfWork(database, readonly=True) as uow:
        assert uow.resources.get(org_id, resource.id) == resource
    with database.engine.connect() as connection:
        row = connection.execute(select(outbox)).one()
    assert (row.type, row.aggregate_id, row.request_id) == ("resource.created", resource.id, "req-1")
    assert row.payload == {"object": v1.resource(resource)}
    assert row.sent_at is None
    assert row.created_at.tzinfo is not None


def test_save_refuses_a_version_that_moved_on(database: Database) -> None:
    org_id = organization(database)
    resource = create_resource(organization_id=org_id, fields=FIELDS, now=utcnow())
    with SqlCatalogUnitOfWork(database) as uow:
        uow.resources.add(resource)
        uow.commit()
    resource.update({"capacity": 2}, utcnow())
    with SqlCatalogUnitOfWork(database) as uow:
        assert uow.resources.save(resource, previous_version=7) is False
        assert uow.resources.save(resource, previous_version=1) is True
        uow.commit()
    with SqlCatalogUnitOfWork(database, readonly=True) as uow:
        stored = uow.resources.get(org_id, resource.id)
    assert stored is not None
    assert (stored.capacity, stored.version) == (2, 2)


def test_the_database_rejects_what_the_domain_would_never_write(database: Database) -> None:
    org_id = organization(database)
    resource = create_resource(organization_id=org_id, fields=FIELDS, now=utcnow())
    resource.capacity = 0  # bypassing the domain's rules: the schema is the second wall
    with pytest.raises(Exception, match=r"(?i)check|constraint"), SqlCatalogUnitOfWork(database) as uow:
        uow.resources.add(resource)
        uow.commit()


def test_a_read_only_unit_of_work_cannot_commit(database: Database) -> None:
    with pytest.raises(RuntimeError, match="read-only"), SqlCatalogUnitOfWork(database, readonly=True) as uow:
        uow.commit()


def test_a_shared_unit_of_work_is_joined_by_those_opened_inside_it(database: Database) -> None:
    org_id = organization(database)
    kept = create_resource(organization_id=org_id, fields=FIELDS, now=utcnow())
    dropped = create_resource(organization_id=org_id, fields=FIELDS, now=utcnow())
    ran: list[str] = []
    with SqlUnitOfWork(database, shared=True) as outer:
        with SqlCatalogUnitOfWork(database) as inner:  # a savepoint of the outer transaction
            inner.resources.add(kept)
            inner.after_commit(lambda: ran.append("kept"))
            inner.commit()
        assert ran == [], "an inner commit waits for the outer one"
        outer.commit()
    assert ran == ["kept"]
    with SqlUnitOfWork(database, shared=True), SqlCatalogUnitOfWork(database) as inner:
        inner.resources.add(dropped)
        inner.after_commit(lambda: ran.append("dropped"))
        inner.commit()
        # the outer unit leaves without committing: the inner commit goes with it
    after = create_resource(organization_id=org_id, fields=FIELDS, now=utcnow())
    with SqlUnitOfWork(database, shared=True) as outer:
        outer.commit()
        with SqlCatalogUnitOfWork(database) as alone:  # after the outer commit: on its own again
            alone.resources.add(after)
            alone.commit()
    with database.engine.connect() as connection:
        stored = set(connection.execute(select(resources.c.id)).scalars())
    assert (kept.id in stored, dropped.id in stored, after.id in stored, ran) == (True, False, True, ["kept"])
