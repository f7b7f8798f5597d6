"""Booking's table and repository on SQLAlchemy Core; rows are translated to domain objects here."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import select
from sqlalchemy import text

from bookwell.booking.domain import Booking
from bookwell.booking.domain import ResourceTerms
from bookwell.booking.domain import Status
from bookwell.booking.domain import email_key
from bookwell.booking.ports import BookingFilter
from bookwell.catalog import facade as catalog
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import fetch_page
from bookwell.platform.db import metadata
from bookwell.platform.kernel.cache import Scope
from bookwell.platform.kernel.money import Money
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.messaging.outbox import SqlOutbox
from bookwell.platform.workflow.saga import SqlSagaStarter

LIVE = (Status.PENDING.value, Status.CONFIRMED.value)

bookings = Table(
    "bookings",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("organization_id", String(30), ForeignKey("organizations.id"), nullable=False),
    Column("resource_id", String(30), ForeignKey("resources.id"), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("customer_name", String(200), nullable=False),
    Column("customer_email", String(254), nullable=False),
    Column("customer_email_key", String(512), nullable=False),  # email_key(customer_email): what filters match
    Column("status", String(16), nullable=False),
    Column("hold_expires_at", UtcDateTime),
    Column("price_amount", BigInteger, nullable=False),
    Column("price_currency", String(3), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("payment_token", String(255)),
    Column("cancellation_reason", String(500)),
    Column("exclusive", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("ends_at > starts_at", name="range_not_empty"),
    CheckConstraint("quantity >= 1", name="quantity_positive"),
    CheckConstraint("status IN ('pending', 'confirmed', 'failed', 'expired', 'cancelled')", name="status_known"),
    CheckConstraint("status <> 'pending' OR hold_expires_at IS NOT NULL", name="pending_has_hold"),
    # The list's access paths: newest first within an organization, optionally by one filter.
    Index("ix_bookings_organization_id_id", "organization_id", "id"),
    Index("ix_bookings_organization_id_resource_id_id", "organization_id", "resource_id", "id"),
    Index("ix_bookings_organization_id_status_id", "organization_id", "status", "id"),
    Index("ix_bookings_organization_id_customer_email_key_id", "organization_id", "customer_email_key", "id"),
    Index("ix_bookings_organization_id_starts_at", "organization_id", "starts_at"),  # start_from / start_to
    # Capacity checks and availability: a resource's live bookings by time.
    Index(
        "ix_bookings_resource_live",
        "resource_id",
        "starts_at",
        "ends_at",
        sqlite_where=text("status IN ('pending', 'confirmed')"),
        postgresql_where=text("status IN ('pending', 'confirmed')"),
    ),
    # The expiry job: pending bookings by the end of their hold.
    Index(
        "ix_bookings_pending_hold",
        "hold_expires_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)


def _row(booking: Booking) -> dict[str, Any]:
    return {
        "status": booking.status.value,
        "hold_expires_at": booking.hold_expires_at,
        "cancellation_reason": booking.cancellation_reason,
        "version": booking.version,
        "updated_at": booking.updated_at,
    }


def _booking(row: Any) -> Booking:
    return Booking(
        id=row.id,
        organization_id=row.organization_id,
        resource_id=row.resource_id,
        start=row.starts_at,
        end=row.ends_at,
        quantity=row.quantity,
        customer_name=row.customer_name,
        customer_email=row.customer_email,
        status=Status(row.status),
        hold_expires_at=row.hold_expires_at,
        price=Money(row.price_amount, row.price_currency),
        metadata=dict(row.metadata),
        payment_token=row.payment_token,
        cancellation_reason=row.cancellation_reason,
        exclusive=row.exclusive,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlBookingRepository:
    def __init__(self, connection: Connection, changed: Callable[[Scope], None]) -> None:
        self._connection = connection
        self._changed = changed  # a booking's writes end its resource's cached availability

    def add(self, booking: Booking) -> None:
        self._connection.execute(
            bookings.insert().values(
                id=booking.id,
                organization_id=booking.organization_id,
                resource_id=booking.resource_id,
                starts_at=booking.start,
                ends_at=booking.end,
                quantity=booking.quantity,
                customer_name=booking.customer_name,
                customer_email=booking.customer_email,
                customer_email_key=email_key(booking.customer_email),
                price_amount=booking.price.amount,
                price_currency=booking.price.currency,
                metadata=booking.metadata,
                payment_token=booking.payment_token,
                exclusive=booking.exclusive,
                created_at=booking.created_at,
                **_row(booking),
            )
        )
        self._changed(Scope(booking.organization_id, booking.resource_id))

    def get(self, organization_id: str, booking_id: str) -> Booking | None:
        query = select(bookings).where(bookings.c.organization_id == organization_id, bookings.c.id == booking_id)
        row = self._connection.execute(query).first()
        return None if row is None else _booking(row)

    def list(self, organization_id: str, filters: BookingFilter, page: PageRequest) -> Page[Booking]:
        query = select(bookings).where(bookings.c.organization_id == organization_id)
        if filters.resource_id is not None:
            query = query.where(bookings.c.resource_id == filters.resource_id)
        if filters.status is not None:
            query = query.where(bookings.c.status == filters.status.value)
        if filters.customer_email is not None:
            query = query.where(bookings.c.customer_email_key == filters.customer_email)
        if filters.start_from is not None:
            query = query.where(bookings.c.starts_at >= filters.start_from)
        if filters.start_to is not None:
            query = query.where(bookings.c.starts_at < filters.start_to)
        return fetch_page(self._connection, query, bookings.c.id, page, _booking)

    def overlapping(self, resource_id: str, start: datetime, end: datetime, now: datetime) -> Sequence[Booking]:
        query = select(bookings).where(
            bookings.c.resource_id == resource_id,
            bookings.c.status.in_(LIVE),
            bookings.c.starts_at < end,
            bookings.c.ends_at > start,
        )
        return [_booking(row) for row in self._connection.execute(query)]

    def lapsed_holds(self, now: datetime, limit: int) -> Sequence[Booking]:
        query = (
            select(bookings)
            .where(bookings.c.status == Status.PENDING.value, bookings.c.hold_expires_at <= now)
            .order_by(bookings.c.hold_expires_at)
            .limit(limit)
        )
        return [_booking(row) for row in self._connection.execute(query)]

    def save(self, booking: Booking, *, previous_version: int) -> bool:
        result = self._connection.execute(
            bookings.update()
            .where(bookings.c.id == booking.id, bookings.c.version == previous_version)
            .values(**_row(booking))
        )
        if result.rowcount != 1:
            return False
        self._changed(Scope(booking.organization_id, booking.resource_id))
        return True


class CatalogResources:
    """The catalog, through its facade, on this unit of work's connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def terms(self, organization_id: str, resource_id: str, *, lock: bool) -> ResourceTerms | None:
        resource = catalog.resource(self._connection, organization_id, resource_id, lock=lock)
        if resource is None:
            return None
        return ResourceTerms(
            id=resource.id,
            timezone=resource.timezone,
            capacity=resource.capacity,
            slot_minutes=resource.slot_minutes,
            min_slots=resource.min_slots,
            max_slots=resource.max_slots,
            opening_hours=resource.opening_hours.days,
            price_per_slot=resource.price_per_slot,
            hold_minutes=resource.hold_minutes,
            active=resource.active,
            refund_until_hours_before=resource.cancellation.refund_until_hours_before,
        )


class SqlBookingUnitOfWork(SqlUnitOfWork):
    resources: CatalogResources
    bookings: SqlBookingRepository
    events: SqlOutbox
    sagas: SqlSagaStarter

    def _open_repositories(self, connection: Connection) -> None:
        self.resources = CatalogResources(connection)
        self.bookings = SqlBookingRepository(connection, self.changed)
        self.events = SqlOutbox(connection)
        self.sagas = SqlSagaStarter(connection)
