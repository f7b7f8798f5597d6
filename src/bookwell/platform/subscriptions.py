"""Internal subscribers of events, and the inbox that makes each run once per event.

A handler is registered by name for event types. When the relay delivers an event it writes one
`inbox` row per handler (pending) in the transaction that marks the event sent, then enqueues a job
per row. The job runs the handler and marks the row done in one transaction, so a redelivered or
re-driven job finds the row done and runs nothing: effects in the database happen exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import metadata
from bookwell.platform.outbox import LoggedEvent
from bookwell.platform.outbox import outbox

PENDING, DONE, DEAD = "pending", "done", "dead"

inbox = Table(
    "inbox",
    metadata,
    Column("event_id", String(30), ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True),
    Column("handler", String(100), primary_key=True),
    Column("status", String(16), nullable=False),
    # When the next attempt should have started; a pending row far past it was lost and is re-driven.
    Column("due_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
    CheckConstraint("status IN ('pending', 'done', 'dead')", name="status"),
    Index(
        "ix_inbox_pending_due_at",
        "due_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

Handler = Callable[[LoggedEvent], None]
"""Runs inside the job's transaction: units of work opened in it join it, and commit with the inbox row."""


@dataclass(frozen=True)
class Delivery:
    """One handler's pending run of one event."""

    event_id: str
    handler: str


class Subscriptions:
    """Which named handler runs for which event types; names are stable, they key the inbox."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._by_type: dict[str, list[str]] = {}

    def subscribe(self, name: str, event_types: Iterable[str], handler: Handler) -> None:
        """Run `handler` once for every event of `event_types`."""
        if name in self._handlers:
            raise ValueError(f"a handler named {name!r} is already subscribed")
        self._handlers[name] = handler
        for event_type in event_types:
            self._by_type.setdefault(event_type, []).append(name)

    def handlers_for(self, event_type: str) -> Sequence[str]:
        """The names of the handlers subscribed to `event_type`."""
        return self._by_type.get(event_type, ())

    def handler(self, name: str) -> Handler:
        """The handler registered as `name` (KeyError if none is)."""
        return self._handlers[name]


def record_deliveries(connection: Connection, deliveries: Sequence[Delivery], now: datetime) -> None:
    """Write a pending inbox row per delivery; a row that exists already (a re-relayed event) stays as it is."""
    if not deliveries:
        return
    rows = [
        {"event_id": d.event_id, "handler": d.handler, "status": PENDING, "due_at": now, "created_at": now}
        for d in deliveries
    ]
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        connection.execute(pg_insert(inbox).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        connection.execute(sqlite_insert(inbox).on_conflict_do_nothing(), rows)


def stalled(
    connection: Connection, now: datetime, grace: timedelta, limit: int
) -> list[tuple[Delivery, dict[str, str]]]:
    """Pending deliveries whose run should have started `grace` ago (their job was lost, or never
    sent), each with the request context of its event."""
    rows = connection.execute(
        select(inbox.c.event_id, inbox.c.handler, outbox.c.request_id, outbox.c.traceparent)
        .join(outbox, outbox.c.id == inbox.c.event_id)
        .where(inbox.c.status == PENDING, inbox.c.due_at < now - grace)
        .order_by(inbox.c.due_at)
        .limit(limit)
    ).all()
    return [
        (
            Delivery(row.event_id, row.handler),
            {key: value for key in ("request_id", "traceparent") if (value := row._mapping[key])},
        )
        for row in rows
    ]


def move(connection: Connection, delivery: Delivery, *, due_at: datetime, status: str, was: str) -> None:
    """Set a delivery's next run and status, only if it is still `was`: a retry or re-drive moves a
    pending one, the last failure makes a pending one dead, a replay makes a dead one pending."""
    connection.execute(
        update(inbox)
        .where(inbox.c.event_id == delivery.event_id, inbox.c.handler == delivery.handler, inbox.c.status == was)
        .values(status=status, due_at=due_at)
    )


def purge_delivered(connection: Connection, before: datetime) -> int:
    """Delete events delivered before `before` whose every delivery is done (their inbox rows go
    with them); how many. An event with a dead or pending delivery stays until it is replayed, and
    the newest event stays so that `seq` and `position` never start again from 1."""
    unfinished = select(inbox.c.event_id).where(inbox.c.event_id == outbox.c.id, inbox.c.status != DONE)
    newest_seq = select(func.max(outbox.c.seq)).scalar_subquery()
    newest_position = select(func.max(outbox.c.position)).scalar_subquery()
    return connection.execute(
        delete(outbox).where(
            outbox.c.sent_at < before,
            ~unfinished.exists(),
            outbox.c.seq < newest_seq,
            outbox.c.position < newest_position,
        )
    ).rowcount
