"""`bookwell seed`: a realistic large dataset, loaded fast, for benchmarks at scale (issue 11).

Organizations and their first keys are made through the identity service and resources through
the catalog service, so both are exactly what the API would have made. Bookings, the bulk, go
straight into the `bookings` table: `COPY` on PostgreSQL, batched inserts on SQLite. They are a
year of history around today on every resource (half a year back, half ahead) in every status,
never overlapping on a resource, with ids minted at their creation time (so lists page through
them as they would have been made) and customers that come back. No events are recorded for them:
a seed is not business that happened, and nothing downstream should act on it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from bookwell.booking.adapters.sql import bookings
from bookwell.booking.domain import email_key
from bookwell.catalog import service as catalog_service
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.kernel.ids import new_id

OPEN_HOURS = 16  # 07:00 to 23:00, every day
FIRST_HOUR = 7
DAYS = 364
SLOTS_PER_YEAR = DAYS * OPEN_HOURS
STRIDE = 7919  # a prime sharing no factor with SLOTS_PER_YEAR: k -> k * STRIDE mod slots never repeats
CUSTOMERS = 200  # per organization
PRICED_SHARE = 0.5
# Shares of each status: a free booking is confirmed at once or later cancelled; a priced one may
# also fail its payment, lapse unpaid, or (ahead of now) still be waiting for its payment.
FREE = (("confirmed", 0.9), ("cancelled", 0.1))
PRICED_PAST = (("confirmed", 0.80), ("cancelled", 0.10), ("failed", 0.05), ("expired", 0.05))
PRICED_AHEAD = (("confirmed", 0.85), ("cancelled", 0.10), ("failed", 0.02), ("expired", 0.02), ("pending", 0.01))
COLUMNS = (
    "id", "organization_id", "resource_id", "starts_at", "ends_at", "quantity", "customer_name", "customer_email",
    "customer_email_key", "status", "hold_expires_at", "price_amount", "price_currency", "metadata",
    "payment_token", "cancellation_reason", "exclusive", "version", "created_at", "updated_at",
)  # fmt: skip
WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Seeded:
    """What was made: each organization's id and key, each resource's id, and how many bookings."""

    organizations: list[tuple[str, str]]
    resources: list[tuple[str, str, int]]  # (organization id, resource id, price per slot)
    bookings: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "organizations": [{"id": org, "api_key": key} for org, key in self.organizations],
            "resources": [{"organization_id": org, "id": res, "price": price} for org, res, price in self.resources],
            "bookings": self.bookings,
        }


def seed(database: Database, *, organizations: int, resources: int, bookings_count: int, rng_seed: int = 1) -> Seeded:
    """Make `organizations`, `resources` spread over them, and `bookings_count` bookings spread over those."""
    if not 1 <= organizations <= resources:
        raise ValueError("at least one organization, and no more organizations than resources")
    if bookings_count > resources * SLOTS_PER_YEAR:
        raise ValueError(f"at most {SLOTS_PER_YEAR} bookings per resource fit in a year of hourly slots")
    rng = random.Random(rng_seed)  # noqa: S311 - a repeatable dataset, not a secret
    made = [
        identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name=f"Seeded {n + 1}")
        for n in range(organizations)
    ]
    orgs = [(organization.id, token) for organization, token in made]
    courts = []
    for n in range(resources):
        organization_id = orgs[n % organizations][0]
        price = 1500 if rng.random() < PRICED_SHARE else 0
        resource = catalog_service.create_resource(
            uow=SqlCatalogUnitOfWork(database),
            organization_id=organization_id,
            fields={
                "name": f"Court {n + 1}",
                "timezone": "UTC",
                "slot_minutes": 60,
                "max_slots": 2,
                "opening_hours": {day: [[f"{FIRST_HOUR:02d}:00", "23:00"]] for day in WEEK},
                "price_per_slot": {"amount": price, "currency": "EUR"},
            },
        )
        courts.append((organization_id, resource.id, price))
    rows = _bookings(courts, bookings_count, rng)
    if database.dialect == "postgresql":
        _copy(database, rows)
    else:
        _insert(database, rows)
    return Seeded(orgs, courts, bookings_count)


def _bookings(courts: list[tuple[str, str, int]], count: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    now = datetime.now(UTC)
    first_day = (now - timedelta(days=DAYS // 2)).replace(hour=0, minute=0, second=0, microsecond=0)
    for n in range(count):
        organization_id, resource_id, price = courts[n % len(courts)]
        k = n // len(courts)  # this resource's k-th booking: a slot of its own
        slot = (k * STRIDE) % SLOTS_PER_YEAR
        start = first_day + timedelta(days=slot // OPEN_HOURS, hours=FIRST_HOUR + slot % OPEN_HOURS)
        created = min(start, now) - timedelta(hours=rng.randint(1, 24 * 30))  # booked up to 30 days ahead
        status = _pick(FREE if not price else PRICED_PAST if start < now else PRICED_AHEAD, rng)
        if status == "pending" and created < now - timedelta(minutes=10):
            created = now - timedelta(seconds=rng.randint(0, 540))  # a hold still running
        customer = rng.randrange(CUSTOMERS)
        email = f"customer{customer}@example.com"
        updated = min(created + timedelta(minutes=5), now) if status != "confirmed" or price else created
        yield (
            new_id("bkg", now_ms=int(created.timestamp() * 1000)),
            organization_id,
            resource_id,
            start,
            start + timedelta(hours=1),
            1,
            f"Customer {customer}",
            email,
            email_key(email),
            status,
            created + timedelta(minutes=10) if status == "pending" else None,
            price,
            "EUR",
            "{}",
            "tok_seed" if price else None,
            "changed plans" if status == "cancelled" else None,
            True,  # capacity 1: the exclusion constraint holds for them as for any other
            1 if status == "pending" or (status == "confirmed" and not price) else 2,  # one change a step
            created,
            updated,
        )


def _pick(weights: tuple[tuple[str, float], ...], rng: random.Random) -> str:
    roll = rng.random()
    for status, share in weights:
        roll -= share
        if roll < 0:
            return status
    return weights[0][0]


def _copy(database: Database, rows: Iterator[tuple[Any, ...]]) -> None:
    raw = database.engine.raw_connection()
    try:
        statement = f"COPY bookings ({', '.join(COLUMNS)}) FROM STDIN"
        with raw.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SET LOCAL statement_timeout = 0")  # the API's timeout is for requests, not a load
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute("ANALYZE bookings")  # plans from the new statistics at once, not at autovacuum's pace
        raw.commit()
    finally:
        raw.close()


def _insert(database: Database, rows: Iterator[tuple[Any, ...]], batch: int = 10_000) -> None:
    chunk: list[dict[str, Any]] = []
    with database.engine.begin() as connection:
        for row in rows:
            values = dict(zip(COLUMNS, row, strict=True))
            values["metadata"] = {}
            chunk.append(values)
            if len(chunk) == batch:
                connection.execute(insert(bookings), chunk)
                chunk = []
        if chunk:
            connection.execute(insert(bookings), chunk)
