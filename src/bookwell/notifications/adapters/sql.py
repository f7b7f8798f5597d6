"""Notifications' tables and repositories on SQLAlchemy Core; rows become domain objects here.

No secret is in these tables: an endpoint keeps the random salts its secrets are derived from
under the settings' secret key (ADR 0032).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import TypeVar

from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text

from bookwell.notifications.domain import Attempt
from bookwell.notifications.domain import Delivery
from bookwell.notifications.domain import DeliveryStatus
from bookwell.notifications.domain import DisabledReason
from bookwell.notifications.domain import Endpoint
from bookwell.notifications.domain import EventToSend
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import fetch_page
from bookwell.platform.db import metadata
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.messaging.outbox import EVENT_RETENTION
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.platform.messaging.outbox import SqlOutbox
from bookwell.platform.messaging.outbox import logged_event
from bookwell.platform.messaging.outbox import outbox

_T = TypeVar("_T")
DISPATCH_LOCK = 0x626B776C_77680001  # "bkwl" "wh" 1: the advisory lock key dispatchers take turns on
CHUNK = 500  # rows per multi-row statement: 12 parameters each, far under PostgreSQL's 65,535 and SQLite's 32,766

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("organization_id", String(30), ForeignKey("organizations.id"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("description", String(500)),
    Column("active", Boolean, nullable=False),
    Column("disabled_reason", String(16)),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("secret_salt", String(64), nullable=False),
    Column("previous_secret_salt", String(64)),
    Column("previous_secret_expires_at", UtcDateTime),
    Column("failing_since", UtcDateTime),
    CheckConstraint("disabled_reason IN ('gone', 'failing')", name="disabled_reason"),
    CheckConstraint("version >= 1", name="version_positive"),
    Index("ix_webhook_endpoints_organization_id_id", "organization_id", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("organization_id", String(30), nullable=False),
    Column("endpoint_id", String(30), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(30), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # serialised once, signed and sent as it is on every attempt
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("scheduled_attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime),
    # Set while a worker has the attempt; a claim that lapses (its worker died) makes it due again.
    Column("claimed_until", UtcDateTime),
    Column("claim", String(32)),  # the claiming dispatch's token: a stale or duplicated job attempts nothing
    Column("last_status_code", Integer),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("status IN ('pending', 'succeeded', 'dead')", name="status"),
    CheckConstraint("status <> 'pending' OR next_attempt_at IS NOT NULL", name="pending_is_due"),
    UniqueConstraint("endpoint_id", "event_id"),
    Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),  # an endpoint's deliveries, newest first
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("delivery_id", String(30), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Integer, nullable=False),
    Column("error", String(64)),
    Column("response_body", Text),
)


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        organization_id=row.organization_id,
        url=row.url,
        event_types=tuple(row.event_types),
        description=row.description,
        active=row.active,
        disabled_reason=None if row.disabled_reason is None else DisabledReason(row.disabled_reason),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret_salt=row.secret_salt,
        previous_secret_salt=row.previous_secret_salt,
        previous_secret_expires_at=row.previous_secret_expires_at,
        failing_since=row.failing_since,
    )


def _endpoint_row(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "description": endpoint.description,
        "active": endpoint.active,
        "disabled_reason": endpoint.disabled_reason,
        "version": endpoint.version,
        "updated_at": endpoint.updated_at,
        "secret_salt": endpoint.secret_salt,
        "previous_secret_salt": endpoint.previous_secret_salt,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "failing_since": endpoint.failing_since,
    }


class SqlEndpointRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, endpoint: Endpoint) -> None:
        self._connection.execute(
            webhook_endpoints.insert().values(
                id=endpoint.id,
                organization_id=endpoint.organization_id,
                created_at=endpoint.created_at,
                **_endpoint_row(endpoint),
            )
        )

    def get(self, organization_id: str, endpoint_id: str) -> Endpoint | None:
        query = select(webhook_endpoints).where(
            webhook_endpoints.c.organization_id == organization_id, webhook_endpoints.c.id == endpoint_id
        )
        row = self._connection.execute(query).first()
        return None if row is None else _endpoint(row)

    def by_id(self, endpoint_id: str) -> Endpoint | None:
        row = self._connection.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)).first()
        return None if row is None else _endpoint(row)

    def list(self, organization_id: str, page: PageRequest) -> Page[Endpoint]:
        query = select(webhook_endpoints).where(webhook_endpoints.c.organization_id == organization_id)
        return fetch_page(self._connection, query, webhook_endpoints.c.id, page, _endpoint)

    def active(self, organization_id: str) -> Sequence[Endpoint]:
        query = select(webhook_endpoints).where(
            webhook_endpoints.c.organization_id == organization_id, webhook_endpoints.c.active.is_(True)
        )
        return [_endpoint(row) for row in self._connection.execute(query)]

    def save(self, endpoint: Endpoint, *, previous_version: int) -> bool:
        result = self._connection.execute(
            webhook_endpoints.update()
            .where(webhook_endpoints.c.id == endpoint.id, webhook_endpoints.c.version == previous_version)
            .values(**_endpoint_row(endpoint))
        )
        return result.rowcount == 1

    def delete(self, endpoint: Endpoint) -> None:
        # Deliveries and their attempts go with it (ON DELETE CASCADE; SQLite's foreign keys are on).
        self._connection.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == endpoint.id))

    def note_health(self, endpoint_id: str, *, failing_since: datetime | None) -> None:
        column = webhook_endpoints.c.failing_since
        self._connection.execute(
            webhook_endpoints.update()
            .where(webhook_endpoints.c.id == endpoint_id)
            .where(column.is_not(None) if failing_since is None else column.is_(None))
            .values(failing_since=failing_since)
        )


def _unclaimed(now: datetime) -> Any:
    claimed_until = webhook_deliveries.c.claimed_until
    return or_(claimed_until.is_(None), claimed_until <= now)


def _delivery(row: Any, attempts: Sequence[Attempt] = ()) -> Delivery:
    return Delivery(
        id=row.id,
        organization_id=row.organization_id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        body=row.body,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        scheduled_attempts=row.scheduled_attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
        claim=row.claim,
        claimed_until=row.claimed_until,
        attempt_log=tuple(attempts),
    )


def _attempt(row: Any) -> Attempt:
    return Attempt(row.number, row.started_at, row.status_code, row.latency_ms, row.error, row.response_body)


class SqlDeliveryRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, deliveries: Sequence[Delivery]) -> Sequence[str]:
        if not deliveries:
            return []
        rows = [
            {
                "id": delivery.id,
                "organization_id": delivery.organization_id,
                "endpoint_id": delivery.endpoint_id,
                "event_id": delivery.event_id,
                "event_type": delivery.event_type,
                "body": delivery.body,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "scheduled_attempts": delivery.scheduled_attempts,
                "next_attempt_at": delivery.next_attempt_at,
                "created_at": delivery.created_at,
                "updated_at": delivery.updated_at,
            }
            for delivery in deliveries
        ]
        # An event re-relayed to the same endpoint keeps its first row; RETURNING names the rows made.
        made: list[str] = []
        for chunk in _chunks(rows):  # a statement's parameters stay under every database's limit
            statement = (
                _insert(self._connection)(webhook_deliveries)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(webhook_deliveries.c.id)
            )
            made += self._connection.execute(statement).scalars()
        return made

    def get(self, organization_id: str, delivery_id: str, *, with_attempts: bool = False) -> Delivery | None:
        row = self._connection.execute(
            select(webhook_deliveries).where(
                webhook_deliveries.c.organization_id == organization_id, webhook_deliveries.c.id == delivery_id
            )
        ).first()
        if row is None:
            return None
        attempts: list[Attempt] = []
        if with_attempts:
            query = (
                select(webhook_attempts)
                .where(webhook_attempts.c.delivery_id == delivery_id)
                .order_by(webhook_attempts.c.number)
            )
            attempts = [_attempt(a) for a in self._connection.execute(query)]
        return _delivery(row, attempts)

    def by_id(self, delivery_id: str) -> Delivery | None:
        row = self._connection.execute(select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def of_events(self, endpoint_id: str, event_ids: Sequence[str]) -> dict[str, Delivery]:
        if not event_ids:
            return {}
        query = select(webhook_deliveries).where(
            webhook_deliveries.c.endpoint_id == endpoint_id, webhook_deliveries.c.event_id.in_(event_ids)
        )
        return {row.event_id: _delivery(row) for row in self._connection.execute(query)}

    def list(
        self, organization_id: str, endpoint_id: str, status: DeliveryStatus | None, page: PageRequest
    ) -> Page[Delivery]:
        query = select(webhook_deliveries).where(
            webhook_deliveries.c.organization_id == organization_id, webhook_deliveries.c.endpoint_id == endpoint_id
        )
        if status is not None:
            query = query.where(webhook_deliveries.c.status == status)
        return fetch_page(self._connection, query, webhook_deliveries.c.id, page, _delivery)

    def due(self, now: datetime, *, limit: int, per_endpoint: int) -> Sequence[str]:
        d, e = webhook_deliveries.c, webhook_endpoints.c
        pending = d.status == DeliveryStatus.PENDING
        in_flight = (
            select(d.endpoint_id, func.count().label("held"))
            .where(pending, d.claimed_until > now)
            .group_by(d.endpoint_id)
            .subquery()
        )
        # Each endpoint's due deliveries ranked oldest first, so one endpoint's backlog never fills
        # the batch: an endpoint gets at most its free slots, whoever else is waiting.
        ranked = (
            select(
                d.id,
                d.endpoint_id,
                d.next_attempt_at,
                func.row_number().over(partition_by=d.endpoint_id, order_by=(d.next_attempt_at, d.id)).label("rank"),
            )
            .where(pending, d.next_attempt_at <= now, _unclaimed(now))
            .subquery()
        )
        slots = case((e.failing_since.is_(None), per_endpoint), else_=1)
        chosen = (
            select(ranked.c.id)
            .join(webhook_endpoints, and_(e.id == ranked.c.endpoint_id, e.active.is_(True)))
            .outerjoin(in_flight, in_flight.c.endpoint_id == ranked.c.endpoint_id)
            .where(ranked.c.rank + func.coalesce(in_flight.c.held, 0) <= slots)
            .order_by(ranked.c.next_attempt_at)
            .limit(limit)
        )
        return list(self._connection.execute(chosen).scalars())

    def backlog(self, now: datetime) -> tuple[int, int, datetime | None]:
        """Pending deliveries, how many of those to active endpoints are due and unclaimed, and the
        oldest due time among them (a disabled endpoint's deliveries wait for it, not for a worker)."""
        d, e = webhook_deliveries.c, webhook_endpoints.c
        pending = self._connection.execute(
            select(func.count()).select_from(webhook_deliveries).where(d.status == DeliveryStatus.PENDING)
        ).scalar_one()
        due, oldest = self._connection.execute(
            select(func.count(), func.min(d.next_attempt_at))
            .select_from(webhook_deliveries.join(webhook_endpoints, e.id == d.endpoint_id))
            .where(d.status == DeliveryStatus.PENDING, d.next_attempt_at <= now, _unclaimed(now), e.active.is_(True))
        ).one()
        return int(pending), int(due), oldest

    def take_dispatch_turn(self) -> None:
        # SQLite's write lock already makes writers take turns; PostgreSQL's a transaction-scoped advisory lock.
        if self._connection.dialect.name == "postgresql":
            self._connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DISPATCH_LOCK})

    def claim(self, delivery_ids: Sequence[str], now: datetime, *, until: datetime, token: str) -> Sequence[str]:
        if not delivery_ids:
            return []
        d = webhook_deliveries.c
        # The conditional update is the claim: of two dispatchers, one gets each row.
        claimed = self._connection.execute(
            webhook_deliveries.update()
            .where(
                d.id.in_(delivery_ids), d.status == DeliveryStatus.PENDING, d.next_attempt_at <= now, _unclaimed(now)
            )
            .values(claimed_until=until, claim=token)
            .returning(d.id)
        )
        return list(claimed.scalars())

    def record(self, after: Delivery, attempt: Attempt, *, token: str) -> bool:
        d = webhook_deliveries.c
        held = and_(d.id == after.id, d.status == DeliveryStatus.PENDING, d.claim == token)
        number = self._connection.execute(
            webhook_deliveries.update()
            .where(held)
            .values(
                status=after.status,
                attempts=d.attempts + 1,
                scheduled_attempts=after.scheduled_attempts,
                next_attempt_at=after.next_attempt_at,
                last_status_code=after.last_status_code,
                claimed_until=None,
                claim=None,
                updated_at=after.updated_at,
            )
            .returning(d.attempts)
        ).scalar_one_or_none()
        stored = number is not None
        if not stored:  # claimed again or restarted meanwhile: the attempt happened, so it is logged
            number = self._connection.execute(
                webhook_deliveries.update()
                .where(d.id == after.id)
                .values(attempts=d.attempts + 1)
                .returning(d.attempts)
            ).scalar_one_or_none()
        if number is None:  # deleted with its endpoint
            return False
        self._connection.execute(
            webhook_attempts.insert().values(
                delivery_id=after.id,
                number=number,
                started_at=attempt.started_at,
                status_code=attempt.status_code,
                latency_ms=attempt.latency_ms,
                error=attempt.error,
                response_body=attempt.response_body,
            )
        )
        return stored

    def release(self, delivery_id: str, token: str) -> None:
        d = webhook_deliveries.c
        self._connection.execute(
            webhook_deliveries.update()
            .where(d.id == delivery_id, d.claim == token)
            .values(claim=None, claimed_until=None)
        )

    def restart(self, delivery_ids: Sequence[str], now: datetime) -> None:
        d = webhook_deliveries.c
        in_flight = and_(d.status == DeliveryStatus.PENDING, d.claimed_until > now)
        for chunk in _chunks(delivery_ids):
            self._connection.execute(
                webhook_deliveries.update()
                .where(d.id.in_(chunk), ~in_flight)
                .values(
                    status=DeliveryStatus.PENDING,
                    scheduled_attempts=0,
                    next_attempt_at=now,
                    claimed_until=None,
                    claim=None,
                    updated_at=now,
                )
            )


class SqlLoggedEvents:
    """The event log, as replays read it."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def since(self, organization_id: str, since: datetime, types: Sequence[str], limit: int) -> Sequence[EventToSend]:
        # Within what the log keeps, and so within the years a database stores (year 1 at +01:00 is not).
        now = utcnow()
        since = min(max(since, now - EVENT_RETENTION), now)
        query = (
            select(outbox)
            .where(
                outbox.c.organization_id == organization_id,
                outbox.c.position.is_not(None),
                outbox.c.created_at >= since,
                outbox.c.type.in_(types),
            )
            .order_by(outbox.c.position)
            .limit(limit)
        )
        return [to_send(logged_event(row)) for row in self._connection.execute(query)]


def to_send(event: LoggedEvent) -> EventToSend:
    """A logged event as a delivery carries it."""
    return EventToSend(event.id, event.type, event.organization_id, event.as_dict())


def _chunks(items: Sequence[_T], size: int = CHUNK) -> list[Sequence[_T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _insert(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class SqlNotificationsUnitOfWork(SqlUnitOfWork):
    endpoints: SqlEndpointRepository
    deliveries: SqlDeliveryRepository
    logged_events: SqlLoggedEvents
    events: SqlOutbox

    def _open_repositories(self, connection: Connection) -> None:
        self.endpoints = SqlEndpointRepository(connection)
        self.deliveries = SqlDeliveryRepository(connection)
        self.logged_events = SqlLoggedEvents(connection)
        self.events = SqlOutbox(connection)
