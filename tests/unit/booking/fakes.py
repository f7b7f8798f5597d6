"""An in-memory booking unit of work: the catalog's terms from a seeded dict, bookings in a table, events."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from bookwell.booking.domain import Booking
from bookwell.booking.domain import ResourceTerms
from bookwell.booking.domain import Status
from bookwell.booking.domain import email_key
from bookwell.booking.ports import BookingFilter
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from tests.unit.fakes import FakeEvents
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.fakes import _Table
from tests.unit.fakes import keyset_page

LIVE = (Status.PENDING, Status.CONFIRMED)


class FakeResourceTerms(_Table):
    """The catalog as booking sees it: terms per (organization, resource), and every `terms` call made."""

    name = "resource_terms"

    def __init__(self, uow: FakeUnitOfWork) -> None:
        super().__init__(uow)
        self.calls: list[tuple[str, str, bool]] = []  # (organization_id, resource_id, lock); kept across rollbacks

    def add(self, organization_id: str, terms: ResourceTerms) -> None:
        self._rows[terms.id] = (organization_id, terms)

    def terms(self, organization_id: str, resource_id: str, *, lock: bool) -> ResourceTerms | None:
        self.calls.append((organization_id, resource_id, lock))
        row = self._rows.get(resource_id)
        if row is None or row[0] != organization_id:
            return None
        return row[1]


class FakeBookings(_Table):
    """BookingRepository on a dict; like the SQL one, it hands out copies and writes only on a version match."""

    name = "bookings"

    def add(self, booking: Booking) -> None:
        assert booking.id not in self._rows, f"duplicate booking id {booking.id}"
        self._rows[booking.id] = copy.deepcopy(booking)

    def get(self, organization_id: str, booking_id: str) -> Booking | None:
        row = self._rows.get(booking_id)
        return copy.deepcopy(row) if row is not None and row.organization_id == organization_id else None

    def list(self, organization_id: str, filters: BookingFilter, page: PageRequest) -> Page[Booking]:
        rows = [
            copy.deepcopy(b)
            for b in self._rows.values()
            if b.organization_id == organization_id
            and filters.resource_id in (None, b.resource_id)
            and filters.status in (None, b.status)
            and filters.customer_email in (None, email_key(b.customer_email))
            and (filters.start_from is None or b.start >= filters.start_from)
            and (filters.start_to is None or b.start < filters.start_to)
        ]
        return keyset_page(rows, page)

    def overlapping(self, resource_id: str, start: datetime, end: datetime, now: datetime) -> Sequence[Booking]:
        return [
            copy.deepcopy(b)
            for b in self._rows.values()
            if b.resource_id == resource_id and b.status in LIVE and b.start < end and b.end > start
        ]

    def lapsed_holds(self, now: datetime, limit: int) -> Sequence[Booking]:
        lapsed = [
            b
            for b in self._rows.values()
            if b.status is Status.PENDING and b.hold_expires_at is not None and b.hold_expires_at <= now
        ]
        lapsed.sort(key=lambda b: (b.hold_expires_at, b.id))
        return [copy.deepcopy(b) for b in lapsed[:limit]]

    def save(self, booking: Booking, *, previous_version: int) -> bool:
        stored = self._rows.get(booking.id)
        if stored is None or stored.version != previous_version:
            return False
        # The columns the SQL repository updates; the rest of a booking never changes after it is made.
        stored.status = booking.status
        stored.hold_expires_at = booking.hold_expires_at
        stored.cancellation_reason = booking.cancellation_reason
        stored.version = booking.version
        stored.updated_at = booking.updated_at
        return True

    @property
    def stored(self) -> list[Booking]:
        """Every stored booking as it stands (copies), for assertions."""
        return [copy.deepcopy(b) for b in self._rows.values()]


class FakeBookingUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.resources = FakeResourceTerms(self)
        self.bookings = FakeBookings(self)
        self.events = FakeEvents(self)
