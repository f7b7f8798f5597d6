"""The transactional outbox: events are rows written in the same transaction as the change they describe.

Two numbers order an event. `seq` is taken when the row is written: a transaction that writes a
later event of the same aggregate started after the earlier one committed, so `seq` is commit
order per aggregate. `position` is given by the relay when it delivers the row, under a lock held
to commit, so positions become visible strictly in order: the event log pages by `position` and a
reader holding a cursor never has an event appear behind it (ADR 0013).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import Identity
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import fetch_page
from bookwell.platform.db import metadata
from bookwell.platform.kernel.clock import rfc3339
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.context import current
from bookwell.platform.kernel.events import Event
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest

EVENT_RETENTION = timedelta(days=30)  # docs/design/api.md: the event log keeps events 30 days
NOTIFY_CHANNEL = "bookwell_outbox"  # PostgreSQL: the relay LISTENs here and wakes on every commit

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(30), primary_key=True),
    # PostgreSQL fills it from an identity; SQLite writers are serialized, so max + 1 is safe there.
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),
    Column("position", BigInteger, unique=True),
    Column("organization_id", String(30), nullable=False),
    Column("type", String(64), nullable=False),
    Column("aggregate_id", String(30), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("request_id", String(128)),
    Column("traceparent", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    # The relay's queue: unsent rows in write order, and the earlier unsent rows of one aggregate.
    Index(
        "ix_outbox_unsent",
        "seq",
        sqlite_where=text("sent_at IS NULL"),
        postgresql_where=text("sent_at IS NULL"),
    ),
    Index(
        "ix_outbox_unsent_aggregate",
        "aggregate_id",
        "seq",
        sqlite_where=text("sent_at IS NULL"),
        postgresql_where=text("sent_at IS NULL"),
    ),
    Index("ix_outbox_sent_at", "sent_at"),
    # The event log's access paths: an organization's events in order, optionally of one type.
    Index("ix_outbox_organization_id_position", "organization_id", "position"),
    Index("ix_outbox_organization_id_type_position", "organization_id", "type", "position"),
)


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the event log, the relay and its consumers see it."""

    id: str
    position: int
    organization_id: str
    type: str
    created_at: datetime
    payload: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "created_at": rfc3339(self.created_at), "data": self.payload}


def event_log(
    connection: Connection, organization_id: str | None, event_type: str | None, page: PageRequest
) -> Page[LoggedEvent]:
    """Delivered events in the order they were delivered (`position`), after `page.after`.

    `organization_id=None` reads every organization's (operators' `bookwell events tail`).
    """
    query = select(outbox).where(outbox.c.position.is_not(None))
    if organization_id is not None:
        query = query.where(outbox.c.organization_id == organization_id)
    if event_type is not None:
        query = query.where(outbox.c.type == event_type)
    if page.after is not None:
        query = query.where(outbox.c.position > int(page.after))
    first = PageRequest(page.limit)
    return fetch_page(connection, query, outbox.c.position, first, logged_event, newest_first=False)


def logged_event(row: Any) -> LoggedEvent:
    """A row of `outbox` as a LoggedEvent."""
    return LoggedEvent(row.id, row.position, row.organization_id, row.type, row.created_at, row.payload)


class SqlOutbox:
    """Records events on the unit of work's connection; they commit or roll back with it."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, event: Event) -> None:
        """Insert one event, stamped with the current request's id and trace context."""
        context = current()
        values: dict[str, Any] = {
            "id": event.id,
            "organization_id": event.organization_id,
            "type": event.type,
            "aggregate_id": event.aggregate_id,
            "payload": {"object": event.object},
            "request_id": context.request_id,
            "traceparent": context.traceparent,
            "created_at": utcnow(),
        }
        if self._connection.dialect.name == "sqlite":
            values["seq"] = select(func.coalesce(func.max(outbox.c.seq), 0) + 1).scalar_subquery()
        self._connection.execute(outbox.insert().values(**values))
        if self._connection.dialect.name == "postgresql":
            # Delivered at commit, and only then; identical notifications in one transaction fold into one.
            self._connection.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


def oldest_unsent(connection: Connection) -> datetime | None:
    """When the oldest event still waiting for the relay was written (None when none waits)."""
    return connection.execute(
        select(outbox.c.created_at).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.seq).limit(1)
    ).scalar_one_or_none()


def unsent(connection: Connection) -> tuple[int, datetime | None]:
    """How many events wait for the relay, and when the oldest of them was written."""
    count = connection.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar_one()
    return int(count), oldest_unsent(connection)
