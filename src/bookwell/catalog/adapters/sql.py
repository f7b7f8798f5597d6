"""Catalog's tables and repositories on SQLAlchemy Core; rows are translated to domain objects here."""

from __future__ import annotations

from collections.abc import Callable
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

from bookwell.catalog.domain import CancellationPolicy
from bookwell.catalog.domain import OpeningHours
from bookwell.catalog.domain import Resource
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import fetch_page
from bookwell.platform.db import metadata
from bookwell.platform.kernel.cache import Scope
from bookwell.platform.kernel.money import Money
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.messaging.outbox import SqlOutbox

resources = Table(
    "resources",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("organization_id", String(30), ForeignKey("organizations.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", String(2000)),
    Column("timezone", String(64), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("slot_minutes", Integer, nullable=False),
    Column("min_slots", Integer, nullable=False),
    Column("max_slots", Integer, nullable=False),
    Column("opening_hours", JSON, nullable=False),
    Column("price_amount", BigInteger, nullable=False),
    Column("price_currency", String(3), nullable=False),
    Column("hold_minutes", Integer, nullable=False),
    Column("refund_until_hours_before", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("deleted_at", UtcDateTime),
    CheckConstraint("capacity >= 1", name="capacity_positive"),
    CheckConstraint("1440 % slot_minutes = 0", name="slot_minutes_divides_day"),
    CheckConstraint("min_slots >= 1 AND min_slots <= max_slots", name="slot_bounds"),
    CheckConstraint("price_amount >= 0", name="price_not_negative"),
    CheckConstraint("version >= 1", name="version_positive"),
    # Keyset pages of an organization's live resources, newest first.
    Index(
        "ix_resources_live",
        "organization_id",
        "id",
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
)


def _row(resource: Resource) -> dict[str, Any]:
    return {
        "name": resource.name,
        "description": resource.description,
        "timezone": resource.timezone,
        "capacity": resource.capacity,
        "slot_minutes": resource.slot_minutes,
        "min_slots": resource.min_slots,
        "max_slots": resource.max_slots,
        "opening_hours": resource.opening_hours.as_dict(),
        "price_amount": resource.price_per_slot.amount,
        "price_currency": resource.price_per_slot.currency,
        "hold_minutes": resource.hold_minutes,
        "refund_until_hours_before": resource.cancellation.refund_until_hours_before,
        "active": resource.active,
        "version": resource.version,
        "updated_at": resource.updated_at,
        "deleted_at": resource.deleted_at,
    }


def _resource(row: Any) -> Resource:
    return Resource(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        description=row.description,
        timezone=row.timezone,
        capacity=row.capacity,
        slot_minutes=row.slot_minutes,
        min_slots=row.min_slots,
        max_slots=row.max_slots,
        opening_hours=OpeningHours.parse(row.opening_hours, row.slot_minutes),
        price_per_slot=Money(amount=row.price_amount, currency=row.price_currency),
        hold_minutes=row.hold_minutes,
        cancellation=CancellationPolicy(row.refund_until_hours_before),
        active=row.active,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


class SqlResourceRepository:
    def __init__(self, connection: Connection, changed: Callable[[Scope], None]) -> None:
        self._connection = connection
        self._changed = changed  # a resource's cached reads (its own and its availability) end with its writes

    def add(self, resource: Resource) -> None:
        self._connection.execute(
            resources.insert().values(
                id=resource.id,
                organization_id=resource.organization_id,
                created_at=resource.created_at,
                **_row(resource),
            )
        )

    def get(self, organization_id: str, resource_id: str) -> Resource | None:
        query = select(resources).where(
            resources.c.organization_id == organization_id,
            resources.c.id == resource_id,
            resources.c.deleted_at.is_(None),
        )
        row = self._connection.execute(query).first()
        return None if row is None else _resource(row)

    def lock(self, organization_id: str, resource_id: str) -> None:
        """Hold the resource's row until the transaction ends (on SQLite the writer lock already does)."""
        self._connection.execute(
            select(resources.c.id)
            .where(resources.c.organization_id == organization_id, resources.c.id == resource_id)
            .with_for_update()
        )

    def list(self, organization_id: str, page: PageRequest, *, active: bool | None) -> Page[Resource]:
        query = select(resources).where(
            resources.c.organization_id == organization_id,
            resources.c.deleted_at.is_(None),
        )
        if active is not None:
            query = query.where(resources.c.active.is_(active))
        return fetch_page(self._connection, query, resources.c.id, page, _resource)

    def save(self, resource: Resource, *, previous_version: int) -> bool:
        result = self._connection.execute(
            resources.update()
            .where(resources.c.id == resource.id, resources.c.version == previous_version)
            .values(**_row(resource))
        )
        if result.rowcount != 1:
            return False
        self._changed(Scope(resource.organization_id, resource.id))
        return True


class SqlCatalogUnitOfWork(SqlUnitOfWork):
    resources: SqlResourceRepository
    events: SqlOutbox

    def _open_repositories(self, connection: Connection) -> None:
        self.resources = SqlResourceRepository(connection, self.changed)
        self.events = SqlOutbox(connection)
