"""Internal subscribers of events, and the inbox that makes each run once per event.

A handler is registered by name for event types. When the relay delivers an event it writes one
`inbox` row per handler (pending) in the transaction that marks the event sent, then enqueues a job
per row, and stamps `sent_at` on the rows whose job the broker accepted. The job runs the handler
and marks the row done in one transaction, so a redelivered or re-driven job finds the row done and
runs nothing: effects in the database happen exactly once.

Re-drive (`stalled`) sends again only what is lost, never what waits in the broker behind a
backlog: a pending row past its due time whose job never reached the broker (`sent_at` is NULL),
or, on a broker that does not redeliver a dead worker's job and once its queue holds no waiting
job, one that died with its worker; on PostgreSQL a row a worker is running right now is locked,
and skipped (ADR 0017).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import tuple_
from sqlalchemy import update

from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import metadata
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.platform.messaging.outbox import outbox

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
    # When the broker last accepted this delivery's job; NULL while no job of it is known to be there
    # (not sent yet, its send failed, or a retry's send is not confirmed).
    Column("sent_at", UtcDateTime),
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


def mark_sent(connection: Connection, deliveries: Sequence[Delivery], now: datetime) -> None:
    """Record that the broker accepted the jobs of `deliveries`, on the rows still pending. A row a
    worker is running already is skipped, not waited for (PostgreSQL): its job evidently arrived,
    and its run settles the row either way."""
    if not deliveries:
        return
    keys = tuple_(inbox.c.event_id, inbox.c.handler)
    waiting = (
        select(inbox.c.event_id, inbox.c.handler)
        .where(keys.in_([(d.event_id, d.handler) for d in deliveries]), inbox.c.status == PENDING)
        .with_for_update(skip_locked=True)
    )
    connection.execute(update(inbox).where(keys.in_(waiting)).values(sent_at=now))


class Lost(NamedTuple):
    """A delivery whose job is lost, with the request context of its event."""

    delivery: Delivery
    context: RequestContext
    was_sent: bool  # False: its job never reached the broker


def stalled(
    connection: Connection,
    now: datetime,
    grace: timedelta,
    limit: int,
    *,
    sent_jobs_held: bool,
    held_for: timedelta = timedelta(hours=1),
) -> list[Lost]:
    """Pending deliveries `grace` past due whose job is lost, locked until the transaction ends
    (PostgreSQL skips the rows a worker is running).

    Lost: the job never reached the broker; or, unless the broker still holds every sent job
    (`sent_jobs_held`: it redelivers a dead worker's job, or jobs still wait in the queue), it was
    sent and taken by a worker that died. A sent job the broker holds is the broker's until it
    is acknowledged, however long it waits in the queue, up to `held_for` after it was sent: past
    that it is presumed lost too (a slow backstop for a broker that dropped it)."""
    query = (
        select(inbox.c.event_id, inbox.c.handler, inbox.c.sent_at, outbox.c.request_id, outbox.c.traceparent)
        .join(outbox, outbox.c.id == inbox.c.event_id)
        .where(inbox.c.status == PENDING, inbox.c.due_at < now - grace)
        .order_by(inbox.c.due_at)
        .limit(limit)
        .with_for_update(of=inbox, skip_locked=True)
    )
    if sent_jobs_held:
        query = query.where(or_(inbox.c.sent_at.is_(None), inbox.c.sent_at < now - held_for))
    return [
        Lost(
            Delivery(row.event_id, row.handler),
            RequestContext(row.request_id, row.traceparent),
            row.sent_at is not None,
        )
        for row in connection.execute(query)
    ]


def overdue(connection: Connection, before: datetime) -> tuple[int, datetime | None]:
    """How many pending deliveries were due before `before`, and the oldest one's due time: the
    job queue's lag (a backlog waiting in the broker, or lost jobs re-drive will send again)."""
    count, oldest = connection.execute(
        select(func.count(), func.min(inbox.c.due_at)).where(inbox.c.status == PENDING, inbox.c.due_at < before)
    ).one()
    return int(count), oldest


def move(
    connection: Connection, delivery: Delivery, *, due_at: datetime, status: str, was: str, sent_at: datetime | None
) -> None:
    """Set a delivery's next run, status and the time its job reached the broker, only if it is
    still `was`: a retry or re-drive moves a pending one, the last failure makes a pending one dead,
    a replay makes a dead one pending."""
    connection.execute(
        update(inbox)
        .where(inbox.c.event_id == delivery.event_id, inbox.c.handler == delivery.handler, inbox.c.status == was)
        .values(status=status, due_at=due_at, sent_at=sent_at)
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
