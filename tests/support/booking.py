"""An organization with a court open round the clock, and booking requests on it, straight through
the services (for tests whose subject is not the HTTP layer)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from bookwell.booking.domain import BookingRequest
from bookwell.catalog import service as catalog_service
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database

TOMORROW = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
EVERY_DAY = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def setup(database: Database, *, price: int = 0, capacity: int = 1) -> tuple[str, str]:
    """A new organization and its court (hourly slots, up to 3 per booking); their ids."""
    organization, _ = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Acme")
    return organization.id, court(database, organization.id, price=price, capacity=capacity)


def court(database: Database, organization_id: str, *, price: int = 0, capacity: int = 1, name: str = "Court") -> str:
    """A court of the organization's, open round the clock in UTC (hourly slots, up to 3 per booking); its id."""
    return catalog_service.create_resource(
        uow=SqlCatalogUnitOfWork(database),
        organization_id=organization_id,
        fields={
            "name": name,
            "timezone": "UTC",
            "slot_minutes": 60,
            "capacity": capacity,
            "max_slots": 3,
            "opening_hours": {day: [["00:00", "24:00"]] for day in EVERY_DAY},
            "price_per_slot": {"amount": price, "currency": "EUR"},
        },
    ).id


def request(organization_id: str, resource_id: str, hours: int = 0, *, token: str | None = None) -> BookingRequest:
    """One hour of the court, `hours` after 10:00 tomorrow (UTC)."""
    start = TOMORROW + timedelta(hours=hours)
    return BookingRequest(
        organization_id=organization_id,
        resource_id=resource_id,
        start=start,
        end=start + timedelta(hours=1),
        quantity=1,
        customer_name="Ada",
        customer_email="ada@example.com",
        payment_token=token,
        metadata={},
    )
