"""The transactional outbox: events are rows written in the same transaction as the change they describe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import JSON
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import select
from sqlalchemy import text

from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import fetch_page
from bookwell.platform.db import metadata
from bookwell.platform.kernel.clock import rfc3339
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.events import Event
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("organization_id", String(30), nullable=False),
    Column("type", String(64), nullable=False),
    Column("aggregate_id", String(30), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("request_id", String(128)),
    Column("traceparent", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Index(
        "ix_outbox_unsent",
        "created_at",
        sqlite_where=text("sent_at IS NULL"),
        postgresql_where=text("sent_at IS NULL"),
    ),
    # The event log's access paths: an organization's events in order, optionally of one type.
    Index("ix_outbox_organization_id_id", "organization_id", "id"),
    Index("ix_outbox_organization_id_type_id", "organization_id", "type", "id"),
)


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the event log shows it."""

    id: str
    type: str
    created_at: datetime
    payload: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "created_at": rfc3339(self.created_at), "data": self.payload}


def event_log(
    connection: Connection, organization_id: str, event_type: str | None, page: PageRequest
) -> Page[LoggedEvent]:
    """The organization's events, oldest first (by event id).

    Known gap, for the relay (issue 4): ids are made before commit, so an event whose transaction
    commits after a later-id event's can land behind a cursor a reader already holds. The relay's
    commit-ordered position should become this list's order.
    """
    query = select(outbox).where(outbox.c.organization_id == organization_id)
    if event_type is not None:
        query = query.where(outbox.c.type == event_type)
    return fetch_page(connection, query, outbox.c.id, page, _logged, newest_first=False)


def _logged(row: Any) -> LoggedEvent:
    return LoggedEvent(row.id, row.type, row.created_at, row.payload)


class SqlOutbox:
    """Records events on the unit of work's connection; they commit or roll back with it."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, event: Event) -> None:
        """Insert one event, stamped with the current request's id and trace context."""
        context = structlog.contextvars.get_contextvars()
        self._connection.execute(
            outbox.insert().values(
                id=event.id,
                organization_id=event.organization_id,
                type=event.type,
                aggregate_id=event.aggregate_id,
                payload={"object": event.object},
                request_id=context.get("request_id"),
                traceparent=context.get("traceparent"),
                created_at=utcnow(),
            )
        )
