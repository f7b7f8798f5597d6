"""Idempotency keys: a claim per (organization, key), and the answer stored with the effect it describes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import PrimaryKeyConstraint
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bookwell.platform.db import Database
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import metadata

RETENTION = timedelta(hours=24)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("organization_id", String(30), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("locked_until", UtcDateTime, nullable=False),
    Column("response_status", Integer),
    Column("response_headers", JSON),
    Column("response_body", LargeBinary),
    Column("created_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
    PrimaryKeyConstraint("organization_id", "key"),
    Index("ix_idempotency_keys_created_at", "created_at"),
)


@dataclass(frozen=True)
class StoredResponse:
    """An answer as it was sent."""

    status: int
    headers: dict[str, str]
    body: bytes


class Claim(enum.Enum):
    """What a request may do with its key."""

    RUN = "run"  # the key is this request's now
    IN_USE = "in_use"  # an identical request is running
    REUSED = "reused"  # the key belongs to another request


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    stored: StoredResponse | None = None  # set when the identical request already completed
    lease: datetime | None = None  # set when the key is this request's: proof of ownership for later
    busy_until: datetime | None = None  # set when IN_USE: when the running request's claim lapses


class IdempotencyStore:
    """Claims, completes, releases and purges keys."""

    def __init__(self, database: Database) -> None:
        self.database = database
        # A claim this old belongs to a request that died mid-way (its process was killed): its
        # effect never committed (the answer commits with it), so the key may run again. A live
        # request is bounded by its statements' timeouts; one that outlives its claim loses it, and
        # its effect rolls back (`complete` answers False), so the lease can be short.
        self.claim_lease = timedelta(seconds=max(5.0, 2 * database.settings.db_statement_timeout_ms / 1000))

    def claim(self, organization_id: str, key: str, fingerprint: str, now: datetime) -> ClaimResult:
        """Take the key for this request (in a transaction of its own, so racing duplicates see it)."""
        with self.database.engine.connect() as connection, connection.begin():
            lease = now + self.claim_lease
            if self._insert_claim(
                connection, organization_id=organization_id, key=key, fingerprint=fingerprint, now=now, lease=lease
            ):
                return ClaimResult(Claim.RUN, lease=lease)
            row = connection.execute(
                select(idempotency_keys)
                .where(idempotency_keys.c.organization_id == organization_id, idempotency_keys.c.key == key)
                .with_for_update()
            ).one()
            if row.fingerprint != fingerprint:
                return ClaimResult(Claim.REUSED)
            if row.completed_at is not None:
                stored = StoredResponse(row.response_status, dict(row.response_headers), bytes(row.response_body))
                return ClaimResult(Claim.RUN, stored)
            if row.locked_until > now:
                return ClaimResult(Claim.IN_USE, busy_until=row.locked_until)
            connection.execute(self._where(organization_id, key).values(locked_until=lease))
            return ClaimResult(Claim.RUN, lease=lease)

    def _insert_claim(
        self,
        connection: Connection,
        *,
        organization_id: str,
        key: str,
        fingerprint: str,
        now: datetime,
        lease: datetime,
    ) -> bool:
        insert = pg_insert if self.database.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(idempotency_keys)
            .values(
                organization_id=organization_id,
                key=key,
                fingerprint=fingerprint,
                locked_until=lease,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
        return connection.execute(statement.returning(idempotency_keys.c.key)).first() is not None

    @staticmethod
    def _where(organization_id: str, key: str) -> Any:
        return update(idempotency_keys).where(
            idempotency_keys.c.organization_id == organization_id, idempotency_keys.c.key == key
        )

    def complete(
        self,
        connection: Connection,
        *,
        organization_id: str,
        key: str,
        lease: datetime,
        response: StoredResponse,
        now: datetime,
    ) -> bool:
        """Store the answer on `connection` (in the request's transaction it commits with the effect).

        False when the claim is no longer this request's: it outlived its lease and another request
        took the key over, so this request's effect must not commit.
        """
        statement = (
            self._where(organization_id, key)
            .where(idempotency_keys.c.locked_until == lease, idempotency_keys.c.completed_at.is_(None))
            .values(
                response_status=response.status,
                response_headers=response.headers,
                response_body=response.body,
                completed_at=now,
            )
        )
        return connection.execute(statement.returning(idempotency_keys.c.key)).first() is not None

    def release(self, organization_id: str, key: str, lease: datetime) -> None:
        """Give up this request's claim after an answer that is not stored (5xx, or a 409 that says retry)."""
        with self.database.engine.connect() as connection, connection.begin():
            connection.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.organization_id == organization_id,
                    idempotency_keys.c.key == key,
                    idempotency_keys.c.locked_until == lease,
                    idempotency_keys.c.completed_at.is_(None),
                )
            )

    def purge(self, now: datetime) -> int:
        """Forget keys older than the retention period; returns how many."""
        with self.database.engine.connect() as connection, connection.begin():
            result = connection.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < now - RETENTION))
            return result.rowcount
