"""The idempotency store on each database: a claim that outlived its lease belongs to its new owner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bookwell.platform.db import Database
from bookwell.platform.idempotency import Claim
from bookwell.platform.idempotency import IdempotencyStore
from bookwell.platform.idempotency import StoredResponse
from bookwell.platform.kernel.clock import utcnow

ANSWER = StoredResponse(201, {"Content-Type": "application/json"}, b"{}")


def test_a_taken_over_claim_can_be_neither_completed_nor_released_by_its_first_owner(database: Database) -> None:
    store = IdempotencyStore(database)
    start = utcnow()
    first = store.claim("org_a", "k", "fp", start)
    later = start + store.claim_lease + timedelta(seconds=1)  # the first request outlived its lease
    second = store.claim("org_a", "k", "fp", later)
    assert (first.claim, second.claim) == (Claim.RUN, Claim.RUN)
    assert first.lease is not None
    assert second.lease is not None
    store.release("org_a", "k", first.lease)  # must not free the second owner's claim
    assert store.claim("org_a", "k", "fp", later).claim is Claim.IN_USE
    with database.engine.connect() as connection, connection.begin():
        assert not store.complete(
            connection, organization_id="org_a", key="k", lease=first.lease, response=ANSWER, now=later
        )
        assert store.complete(
            connection, organization_id="org_a", key="k", lease=second.lease, response=ANSWER, now=later
        )
    assert store.claim("org_a", "k", "fp", later).stored == ANSWER


def test_database_errors_do_not_quote_the_parameters_sent(database: Database) -> None:
    """SQLAlchemy's message leaves bound values out (PostgreSQL's own DETAIL line is masked by the log redactor)."""
    statement = text("INSERT INTO organizations (id, name, created_at) VALUES (:id, :name, NULL)")
    with pytest.raises(IntegrityError) as error, database.engine.begin() as connection:
        connection.execute(statement, {"id": "org_x", "name": "card 4242-4242-4242-4242"})
    assert "SQL parameters hidden" in str(error.value)
    assert "4242" not in str(error.value).split("[SQL:")[1]
