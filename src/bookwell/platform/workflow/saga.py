"""Persisted sagas: long-running processes that call the outside world, one recorded step at a time.

A saga is a row (`sagas`): its type, its subject (the booking or refund it drives), the step it is
at, when it should next run (`next_attempt_at`) and who is running it now (`locked_until`, a lease).
Every step taken and every compensation is a `saga_steps` row, written in the same transaction
as the state change it made, so the log is what happened.

A worker advances a saga by leasing it (an UPDATE that succeeds only if no live lease is held),
running its definition's current step, and recording the outcome: the next step and when, or
done. A worker that dies mid-step leaves a lease that lapses; the sweep (`due`) finds the saga
again and the step runs again from the last recorded state. Steps are written to be repeatable:
they call the outside world with idempotency keys derived from their own ids. A step that raises
`Retry` is tried again after a jittered, growing pause; one that raises anything else leaves its
lease to lapse and is found again by the sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import JSON
from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import UniqueConstraint
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bookwell.platform.db import Database
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import metadata
from bookwell.platform.kernel.clock import rfc3339
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.kernel.retry import backoff_delay
from bookwell.platform.observability import tracing
from bookwell.platform.observability.metrics import SAGA_DURATION

log = structlog.get_logger("bookwell.saga")
RUNNING, DONE = "running", "done"

sagas = Table(
    "sagas",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("type", String(50), nullable=False),
    Column("subject_id", String(30), nullable=False),
    Column("step", String(50), nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(50)),  # how it ended: confirmed, failed, refunded, ...
    Column("data", JSON, nullable=False),
    Column("attempts", Integer, nullable=False),  # failed tries of the current step
    Column("next_attempt_at", UtcDateTime),
    Column("locked_until", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("type", "subject_id"),
    CheckConstraint("status IN ('running', 'done')", name="status"),
    Index(
        "ix_sagas_due",
        "next_attempt_at",
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
)

saga_steps = Table(
    "saga_steps",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("saga_id", String(30), ForeignKey("sagas.id", ondelete="CASCADE"), nullable=False),
    Column("step", String(50), nullable=False),
    Column("outcome", String(50), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_saga_steps_saga_id_at", "saga_id", "at"),
)


@dataclass(frozen=True)
class Saga:
    """A leased saga, as its step sees it."""

    id: str
    type: str
    subject_id: str
    step: str
    data: dict[str, Any]
    attempts: int
    lease: datetime  # this worker's `locked_until`: writes count only while it is still the saga's
    started_at: datetime


class LeaseLost(Exception):
    """The step outlived its lease and another worker took the saga: this step's writes must not land."""


@dataclass(frozen=True)
class SagaView:
    """Where a saga stands, for the objects it drives to show."""

    step: str
    status: str
    outcome: str | None
    attempts: int
    next_attempt_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "next_attempt_at": rfc3339(self.next_attempt_at) if self.next_attempt_at else None,
        }


class Retry(Exception):
    """Raised by a step: the outside world gave no answer; run this step again later."""

    def __init__(self, reason: str, *, not_before_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.not_before_s = not_before_s


Step = Callable[[Saga, "SagaLog"], None]


class SagaLog:
    """What a step uses to record itself, in the transaction of the change it made."""

    def __init__(self, saga: Saga) -> None:
        self.saga = saga

    def step(
        self,
        work: SqlUnitOfWork,
        outcome: str,
        *,
        next_step: str | None,
        detail: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        ended_as: str | None = None,
    ) -> None:
        """Record the current step's outcome in `work`, the unit of work of the change the step made
        (`SqlUnitOfWork(database, shared=True)`, which the contexts' units of work join); then run
        `next_step` at once, or end the saga (`ended_as`)."""
        connection = work.connection
        now = utcnow()
        connection.execute(
            saga_steps.insert().values(
                id=new_id("sst"),
                saga_id=self.saga.id,
                step=self.saga.step,
                outcome=outcome,
                detail=detail or {},
                at=now,
            )
        )
        values: dict[str, Any] = {"attempts": 0, "updated_at": now, "locked_until": None}
        if data is not None:
            values["data"] = {**self.saga.data, **data}
        if next_step is None:
            values |= {"status": DONE, "outcome": ended_as or outcome, "next_attempt_at": None}
            seconds = (now - self.saga.started_at).total_seconds()
            work.after_commit(lambda: SAGA_DURATION.labels(self.saga.type, ended_as or outcome).observe(seconds))
        else:
            values |= {"step": next_step, "next_attempt_at": now}
        owned = connection.execute(
            update(sagas).where(sagas.c.id == self.saga.id, sagas.c.locked_until == self.saga.lease).values(**values)
        )
        if owned.rowcount != 1:
            raise LeaseLost(f"saga {self.saga.id} changed hands during step {self.saga.step}")


def start_saga(
    connection: Connection, saga_type: str, subject_id: str, step: str, data: dict[str, Any] | None = None
) -> str | None:
    """Open a saga for `subject_id` (at most one per type and subject); its id, or None if it exists."""
    if connection.execute(
        select(sagas.c.id).where(sagas.c.type == saga_type, sagas.c.subject_id == subject_id)
    ).first():
        return None
    now = utcnow()
    saga_id = new_id("sag")
    connection.execute(
        sagas.insert().values(
            id=saga_id,
            type=saga_type,
            subject_id=subject_id,
            step=step,
            status=RUNNING,
            data=data or {},
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    connection.execute(
        saga_steps.insert().values(
            id=new_id("sst"), saga_id=saga_id, step="start", outcome="started", detail={"first_step": step}, at=now
        )
    )
    return saga_id


def note(
    work: SqlUnitOfWork, saga_type: str, subject_id: str, step: str, outcome: str, *, detail: dict[str, Any]
) -> None:
    """Record, in `work`, a step taken for a saga outside its own steps (a compensation after it ended, say)."""
    connection = work.connection
    saga_id = connection.execute(
        select(sagas.c.id).where(sagas.c.type == saga_type, sagas.c.subject_id == subject_id)
    ).scalar_one_or_none()
    if saga_id is not None:
        connection.execute(
            saga_steps.insert().values(
                id=new_id("sst"), saga_id=saga_id, step=step, outcome=outcome, detail=detail, at=utcnow()
            )
        )


def saga_of(connection: Connection, saga_type: str, subject_id: str) -> SagaView | None:
    """Where the saga of `subject_id` stands, if it has one."""
    row = connection.execute(select(sagas).where(sagas.c.type == saga_type, sagas.c.subject_id == subject_id)).first()
    if row is None:
        return None
    return SagaView(row.step, row.status, row.outcome, row.attempts, row.next_attempt_at)


class Sagas:
    """The saga types and their steps; leases, runs and records."""

    def __init__(
        self, database: Database, *, lease_s: float = 60.0, backoff_base_s: float = 1.0, backoff_cap_s: float = 60.0
    ) -> None:
        self.database = database
        self.lease_s = lease_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._steps: dict[tuple[str, str], Step] = {}

    def define(self, saga_type: str, step: str, run: Step) -> None:
        """Register what step `step` of `saga_type` does."""
        self._steps[(saga_type, step)] = run

    def id_of(self, saga_type: str, subject_id: str) -> str | None:
        """The id of the saga of `subject_id`, if it has one."""
        with SqlUnitOfWork(self.database, readonly=True) as reading:
            found: str | None = reading.connection.execute(
                select(sagas.c.id).where(sagas.c.type == saga_type, sagas.c.subject_id == subject_id)
            ).scalar_one_or_none()
            return found

    def view(self, saga_type: str, subject_id: str) -> SagaView | None:
        """Where the saga of `subject_id` stands, if it has one."""
        with SqlUnitOfWork(self.database, readonly=True) as reading:
            return saga_of(reading.connection, saga_type, subject_id)

    def running(self) -> tuple[int, datetime | None]:
        """How many sagas run, and when the oldest of them started."""
        with SqlUnitOfWork(self.database, readonly=True) as reading:
            count, oldest = reading.connection.execute(
                select(func.count(), func.min(sagas.c.created_at)).where(sagas.c.status == RUNNING)
            ).one()
            return int(count), oldest

    def due(self, limit: int = 500) -> list[str]:
        """Running sagas whose next attempt is due and that no live lease holds."""
        now = utcnow()
        # Reads join the caller's transaction if there is one, else take no writer lock (SQLite).
        with SqlUnitOfWork(self.database, readonly=True) as reading:
            connection = reading.connection
            return list(
                connection.execute(
                    select(sagas.c.id)
                    .where(
                        sagas.c.status == RUNNING,
                        sagas.c.next_attempt_at <= now,
                        or_(sagas.c.locked_until.is_(None), sagas.c.locked_until < now),
                    )
                    .order_by(sagas.c.next_attempt_at)
                    .limit(limit)
                ).scalars()
            )

    def advance(self, saga_id: str, max_steps: int = 10) -> None:
        """Run the saga's due steps, one after another, until it waits, ends, or another worker has it."""
        for _ in range(max_steps):
            saga = self._lease(saga_id)
            if saga is None:
                return
            run = self._steps[(saga.type, saga.step)]
            with (
                structlog.contextvars.bound_contextvars(saga_id=saga.id, saga_type=saga.type, step=saga.step),
                tracing.tracer.start_as_current_span(f"saga {saga.type} {saga.step}"),
            ):
                try:
                    run(saga, SagaLog(saga))
                except Retry as retry:
                    self._wait(saga, retry)
                    return
                except LeaseLost:
                    log.warning("saga_lease_lost")  # the new holder runs the step; ours rolled back
                    return
                except Exception as error:
                    # A bug or a refusal no retry of the call can fix (a provider's 4xx): counted in
                    # the saga's attempts and its log, backed off to the cap, there for an operator.
                    log.exception("saga_step_failed")
                    self._wait(saga, Retry(f"{type(error).__name__}: {error}"[:500]))
                    return

    def _lease(self, saga_id: str) -> Saga | None:
        now = utcnow()
        with self.database.engine.begin() as connection:
            leased = connection.execute(
                update(sagas)
                .where(
                    sagas.c.id == saga_id,
                    sagas.c.status == RUNNING,
                    sagas.c.next_attempt_at <= now,
                    or_(sagas.c.locked_until.is_(None), sagas.c.locked_until < now),
                )
                .values(locked_until=now + timedelta(seconds=self.lease_s))
                .returning(
                    sagas.c.id,
                    sagas.c.type,
                    sagas.c.subject_id,
                    sagas.c.step,
                    sagas.c.data,
                    sagas.c.attempts,
                    sagas.c.locked_until,
                    sagas.c.created_at,
                )
            ).first()
        if leased is None:
            return None
        return Saga(
            leased.id,
            leased.type,
            leased.subject_id,
            leased.step,
            leased.data,
            leased.attempts,
            leased.locked_until,
            leased.created_at,
        )

    def _wait(self, saga: Saga, retry: Retry) -> None:
        """Record a failed try of the step and when to try again: full jitter, growing, capped."""
        attempts = saga.attempts + 1
        pause = max(retry.not_before_s or 0.0, backoff_delay(attempts, self.backoff_base_s, self.backoff_cap_s))
        now = utcnow()
        with self.database.engine.begin() as connection:
            owned = connection.execute(
                update(sagas)
                .where(sagas.c.id == saga.id, sagas.c.locked_until == saga.lease)
                .values(
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=pause),
                    locked_until=None,
                    updated_at=now,
                )
            )
            if owned.rowcount != 1:
                log.warning("saga_lease_lost")
                return
            connection.execute(
                saga_steps.insert().values(
                    id=new_id("sst"),
                    saga_id=saga.id,
                    step=saga.step,
                    outcome="retry",
                    detail={"reason": retry.reason, "attempt": attempts, "retry_in_s": round(pause, 3)},
                    at=now,
                )
            )
        log.info("saga_step_retry", reason=retry.reason, attempt=attempts, retry_in_s=round(pause, 3))


class SqlSagaStarter:
    """What a unit of work offers its service to open a saga in its transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def start(self, saga_type: str, subject_id: str, step: str, data: dict[str, Any] | None = None) -> str | None:
        """See `start_saga`."""
        return start_saga(self._connection, saga_type, subject_id, step, data)
