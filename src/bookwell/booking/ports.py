"""What the booking service needs from the outside world."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Protocol

from bookwell.booking.domain import Booking
from bookwell.booking.domain import ResourceTerms
from bookwell.booking.domain import Status
from bookwell.platform.kernel.events import EventRecorder
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.kernel.uow import UnitOfWork


@dataclass(frozen=True)
class BookingFilter:
    """The filters of the booking list."""

    resource_id: str | None = None
    status: Status | None = None
    customer_email: str | None = None  # as `email_key` gives it (the service turns an address into it)
    start_from: datetime | None = None
    start_to: datetime | None = None


class Resources(Protocol):
    def terms(self, organization_id: str, resource_id: str, *, lock: bool) -> ResourceTerms | None:
        """The live resource's terms; with `lock`, bookings of it are serialised until the transaction ends."""
        ...


class BookingRepository(Protocol):
    def add(self, booking: Booking) -> None: ...

    def get(self, organization_id: str, booking_id: str) -> Booking | None: ...

    def list(self, organization_id: str, filters: BookingFilter, page: PageRequest) -> Page[Booking]: ...

    def overlapping(self, resource_id: str, start: datetime, end: datetime, now: datetime) -> Sequence[Booking]:
        """Confirmed and pending bookings of the resource that overlap `[start, end)` (lapsed holds too)."""
        ...

    def lapsed_holds(self, now: datetime, limit: int) -> Sequence[Booking]:
        """Pending bookings, of any organization, whose hold ran out before `now`."""
        ...

    def save(self, booking: Booking, *, previous_version: int) -> bool:
        """Write the booking if its stored version is still `previous_version`."""
        ...


class BookingUnitOfWork(UnitOfWork, Protocol):
    @property
    def resources(self) -> Resources: ...

    @property
    def bookings(self) -> BookingRepository: ...

    @property
    def events(self) -> EventRecorder: ...

    @property
    def sagas(self) -> SagaStarter: ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this work is durable (see SqlUnitOfWork.after_commit)."""
        ...


class SagaStarter(Protocol):
    def start(self, saga_type: str, subject_id: str, step: str, data: dict[str, Any] | None = None) -> str | None:
        """Open a saga in this transaction (None if the subject has one)."""
        ...
