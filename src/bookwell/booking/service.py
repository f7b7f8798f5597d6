"""Booking use cases: one function per command or query, each owning its transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime

from bookwell.booking.domain import Booking
from bookwell.booking.domain import BookingNotFound
from bookwell.booking.domain import BookingRejected
from bookwell.booking.domain import BookingRequest
from bookwell.booking.domain import ResourceNotFound
from bookwell.booking.domain import Slot
from bookwell.booking.domain import Status
from bookwell.booking.domain import availability as slots_of
from bookwell.booking.domain import check_span
from bookwell.booking.domain import email_key
from bookwell.booking.domain import normalized_email
from bookwell.booking.domain import place
from bookwell.booking.domain import unchanged_until
from bookwell.booking.events import booking_event
from bookwell.booking.ports import BookingFilter
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.errors import Busy
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest


def place_booking(*, uow: BookingUnitOfWork, request: BookingRequest) -> Booking:
    """Hold (or, when free, confirm) a slot, or refuse at once with SlotUnavailable.

    No double booking by construction: the resource's lock serialises every placement on it,
    and capacity is counted under that lock, so two requests can never both see room for one.
    Lapsed holds in the way are marked expired first (their events commit with this booking),
    which also keeps PostgreSQL's exclusion constraint, the second wall, true.
    """
    now = utcnow()
    with uow:
        terms = uow.resources.terms(request.organization_id, request.resource_id, lock=True)
        if terms is None:
            raise BookingRejected("unknown_resource", "No such resource.", "/resource_id")
        overlapping = uow.bookings.overlapping(terms.id, request.start, request.end, now)
        for lapsed in (b for b in overlapping if b.hold_lapsed(now)):
            if not _expire(uow, lapsed, now):
                raise Busy("A hold in the way changed while this request was being handled; retry.")
        booking = place(terms, request, [b for b in overlapping if b.blocks(now)], now)
        uow.bookings.add(booking)
        uow.events.add(booking_event(booking, "created"))
        if booking.status is Status.CONFIRMED:
            uow.events.add(booking_event(booking, "confirmed"))
        uow.commit()
    return booking


def get_booking(*, uow: BookingUnitOfWork, organization_id: str, booking_id: str) -> Booking:
    """One booking of the organization."""
    with uow:
        booking = uow.bookings.get(organization_id, booking_id)
    if booking is None:
        raise BookingNotFound("No such booking.")
    return booking


def list_bookings(
    *, uow: BookingUnitOfWork, organization_id: str, filters: BookingFilter, page: PageRequest
) -> Page[Booking]:
    """The organization's bookings, newest first; a customer's address is matched in its normal form."""
    if filters.customer_email is not None:
        address = normalized_email(filters.customer_email, "/query/customer_email")
        filters = replace(filters, customer_email=email_key(address))
    with uow:
        return uow.bookings.list(organization_id, filters, page)


def cancel_booking(*, uow: BookingUnitOfWork, organization_id: str, booking_id: str, reason: str | None) -> Booking:
    """Cancel a pending or confirmed booking; `booking.cancelled` commits with it."""
    now = utcnow()
    with uow:
        booking = uow.bookings.get(organization_id, booking_id)
        if booking is None:
            raise BookingNotFound("No such booking.")
        previous = booking.version
        booking.cancel(reason, now)
        _save(uow, booking, previous)
        uow.events.add(booking_event(booking, "cancelled"))
        uow.commit()
    return booking


def expire_holds(*, uow: BookingUnitOfWork, batch: int = 500) -> int:
    """Mark pending bookings whose hold lapsed as expired, with their events; returns how many."""
    now = utcnow()
    with uow:
        expired = sum(_expire(uow, booking, now) for booking in uow.bookings.lapsed_holds(now, batch))
        uow.commit()
    return expired


def expire_all_holds(*, uow: Callable[[], BookingUnitOfWork]) -> int:
    """Expire every lapsed hold, a batch per transaction; returns how many."""
    total = 0
    while expired := expire_holds(uow=uow()):
        total += expired
    return total


@dataclass(frozen=True)
class Availability:
    """A span's future slots with their remaining capacity, and until when that holds with no write."""

    slots: list[Slot]
    unchanged_until: datetime | None


def availability(
    *, uow: BookingUnitOfWork, organization_id: str, resource_id: str, start: datetime, end: datetime
) -> Availability:
    """The resource's future slots in `[start, end)` with their remaining capacity."""
    now = utcnow()
    check_span(start, end, now)
    with uow:
        terms = uow.resources.terms(organization_id, resource_id, lock=False)
        if terms is None:
            raise ResourceNotFound("No such resource.")
        overlapping = uow.bookings.overlapping(terms.id, start, end, now)
    blocking = [b for b in overlapping if b.blocks(now)]
    slots = slots_of(terms, start, end, blocking, now)
    return Availability(slots, unchanged_until(slots, blocking))


def _expire(uow: BookingUnitOfWork, booking: Booking, now: datetime) -> bool:
    """Mark a lapsed hold expired; False when another transaction moved it first (nothing to do)."""
    previous = booking.version
    booking.move_to(Status.EXPIRED, now)
    if not uow.bookings.save(booking, previous_version=previous):
        return False
    uow.events.add(booking_event(booking, "expired"))
    return True


def _save(uow: BookingUnitOfWork, booking: Booking, previous_version: int) -> None:
    if not uow.bookings.save(booking, previous_version=previous_version):
        # Another transaction moved this booking meanwhile; a retry will see its new state.
        raise Busy("The booking changed while this request was being handled; retry.")


def settle_payment(*, uow: BookingUnitOfWork, organization_id: str, booking_id: str, captured: bool) -> Booking:
    """Apply the outcome of a pending booking's payment: captured confirms it (or, if its hold lapsed
    first, expires it), declined fails it and frees the slot. A booking no longer pending is left as
    it is; the caller compensates (refunds a capture that came too late)."""
    now = utcnow()
    with uow:
        booking = uow.bookings.get(organization_id, booking_id)
        if booking is None:
            raise BookingNotFound("No such booking.")
        if booking.status is Status.PENDING:
            previous = booking.version
            lapsed = booking.hold_lapsed(now)
            status = (Status.EXPIRED if lapsed else Status.CONFIRMED) if captured else Status.FAILED
            booking.move_to(status, now)
            _save(uow, booking, previous)
            uow.events.add(booking_event(booking, str(status)))
            uow.commit()
    return booking
