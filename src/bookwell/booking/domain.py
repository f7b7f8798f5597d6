"""Bookings and holds: when a slot may be booked, how much of a resource is in use, how a booking moves.

Times are UTC inside; a resource's opening hours are wall-clock times in its IANA time zone,
turned into UTC windows day by day so DST changes shorten or lengthen a day as they should.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import unicodedata
import zoneinfo
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import email_validator

from bookwell.platform.kernel.errors import Conflict
from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import InvalidInput
from bookwell.platform.kernel.errors import NotFound
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.kernel.money import Money

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_AVAILABILITY_SPAN = timedelta(days=31)
HORIZON = timedelta(days=730)  # how far ahead bookings open, and availability looks


class Status(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.CONFIRMED, Status.FAILED, Status.EXPIRED, Status.CANCELLED}),
    Status.CONFIRMED: frozenset({Status.CANCELLED}),
}


class BookingNotFound(NotFound):
    code = "booking_not_found"


class ResourceNotFound(NotFound):
    code = "resource_not_found"


class SlotUnavailable(Conflict):
    code = "slot_unavailable"
    title = "Slot unavailable"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "Invalid transition"


class BookingRejected(InvalidInput):
    """A booking request that breaks one of the resource's rules; `code` names the rule."""

    def __init__(self, code: str, detail: str, pointer: str) -> None:
        super().__init__(detail, errors=(FieldError(pointer, detail),))
        self.code = code


@dataclass(frozen=True)
class ResourceTerms:
    """What booking needs to know of a resource (read through the catalog's facade)."""

    id: str
    timezone: str
    capacity: int
    slot_minutes: int
    min_slots: int
    max_slots: int
    opening_hours: Mapping[str, Sequence[tuple[int, int]]]  # weekday -> (start, end) minutes after midnight
    price_per_slot: Money
    hold_minutes: int
    active: bool
    refund_until_hours_before: int = 24

    @property
    def slot(self) -> timedelta:
        return timedelta(minutes=self.slot_minutes)


def _wall_clock(day: date, minutes: int, zone: zoneinfo.ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time ("24:00" is the next day's midnight).

    A time the clock skips (a DST gap, 02:30 on a spring-forward night) is taken as the jump
    itself: the first instant whose wall-clock time is past it. So an interval that ends or starts
    in the gap ends or starts when the gap does, and never overlaps its neighbours.
    """
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # In a gap, fold=1 reads the time with the later offset: an instant before the jump.
    low, high = naive.replace(tzinfo=zone, fold=1).astimezone(UTC), instant
    while high - low > timedelta(minutes=1):
        middle = low + timedelta(minutes=(high - low) // timedelta(minutes=2))
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high


def slots_between(terms: ResourceTerms, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The resource's slots (UTC) that overlap `[start, end)`, in order.

    Each local day's opening interval is cut into slots from its own local start, so the grid
    never depends on where a query begins, and a DST change shortens or lengthens only that day
    (a slot that would not fit before the interval closes is not offered).
    """
    zone = zoneinfo.ZoneInfo(terms.timezone)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    slots: list[tuple[datetime, datetime]] = []
    while day <= last:
        for open_at, close_at in terms.opening_hours.get(WEEKDAYS[day.weekday()], ()):
            moment, closes = _wall_clock(day, open_at, zone), _wall_clock(day, close_at, zone)
            while moment + terms.slot <= closes:
                if moment < end and moment + terms.slot > start:
                    slots.append((moment, moment + terms.slot))
                moment += terms.slot
        day += timedelta(days=1)
    return slots


@dataclass
class Booking:
    """A customer's claim on `quantity` units of a resource over `[start, end)`."""

    id: str
    organization_id: str
    resource_id: str
    start: datetime
    end: datetime
    quantity: int
    customer_name: str
    customer_email: str
    status: Status
    hold_expires_at: datetime | None
    price: Money
    metadata: dict[str, str]
    payment_token: str | None
    cancellation_reason: str | None
    exclusive: bool  # made on a capacity-1 resource: the database's exclusion constraint applies
    version: int
    created_at: datetime
    updated_at: datetime

    def blocks(self, now: datetime) -> bool:
        """Whether this booking takes capacity now: confirmed, or pending with a live hold."""
        if self.status is Status.CONFIRMED:
            return True
        return self.status is Status.PENDING and self.hold_expires_at is not None and self.hold_expires_at > now

    def hold_lapsed(self, now: datetime) -> bool:
        """Pending, but its hold ran out: it blocks nothing and is due to be marked expired."""
        return self.status is Status.PENDING and self.hold_expires_at is not None and self.hold_expires_at <= now

    def move_to(self, status: Status, now: datetime) -> None:
        """Take one step of the state machine, or raise InvalidTransition."""
        if status not in TRANSITIONS.get(self.status, frozenset()):
            raise InvalidTransition(f"A {self.status} booking cannot become {status}.")
        self.status = status
        if status is not Status.PENDING:
            self.hold_expires_at = None
        self.version += 1
        self.updated_at = now

    def cancel(self, reason: str | None, now: datetime) -> None:
        """Cancel a pending or confirmed booking; its capacity is free at once."""
        self.move_to(Status.CANCELLED, now)
        self.cancellation_reason = reason


@dataclass(frozen=True)
class BookingRequest:
    """What a caller asks for (already well-formed; the rules of the resource are checked here)."""

    organization_id: str
    resource_id: str
    start: datetime
    end: datetime
    quantity: int
    customer_name: str
    customer_email: str
    payment_token: str | None
    metadata: Mapping[str, str]


def check_request(terms: ResourceTerms, request: BookingRequest, now: datetime) -> int:
    """The number of slots requested, or BookingRejected naming the rule it breaks."""
    if not terms.active:
        raise BookingRejected("resource_inactive", "The resource is not taking bookings.", "/resource_id")
    if request.end <= request.start:
        raise BookingRejected("invalid_range", "The booking must end after it starts.", "/end")
    if request.start <= now:
        raise BookingRejected("start_in_past", "The booking must start in the future.", "/start")
    if request.end > now + HORIZON:
        raise BookingRejected("beyond_horizon", "Bookings open at most 730 days ahead.", "/end")
    if request.quantity > terms.capacity:
        raise BookingRejected(
            "quantity_exceeds_capacity", f"The resource takes at most {terms.capacity} at a time.", "/quantity"
        )
    if request.end - request.start > terms.slot * terms.max_slots:
        # Refused before cutting the range into slots: that work runs under the resource's lock.
        raise BookingRejected("invalid_duration", f"A booking lasts at most {terms.max_slots} slots.", "/end")
    slots = len(_run_of_slots(terms, request))
    if not terms.min_slots <= slots <= terms.max_slots:
        raise BookingRejected(
            "invalid_duration",
            f"A booking lasts {terms.min_slots} to {terms.max_slots} slots; this is {slots}.",
            "/end",
        )
    priced = not terms.price_per_slot.is_zero
    if priced and request.payment_token is None:
        raise BookingRejected("payment_required", "This resource is paid for: send `payment.token`.", "/payment")
    if not priced and request.payment_token is not None:
        raise BookingRejected("payment_not_accepted", "This resource is free: send no payment.", "/payment")
    return slots


def _run_of_slots(terms: ResourceTerms, request: BookingRequest) -> list[tuple[datetime, datetime]]:
    """The consecutive slots a booking covers exactly, or BookingRejected saying why there are none."""
    overlapping = slots_between(terms, request.start, request.end)
    starts = {slot_start for slot_start, _ in overlapping}
    ends = {slot_end for _, slot_end in overlapping}
    for field, moment, edges in (("start", request.start, starts), ("end", request.end, ends)):
        if moment not in edges:
            if any(s < moment < e for s, e in overlapping):
                raise BookingRejected(
                    "not_on_slot_boundary",
                    f"`{field}` must fall on a {terms.slot_minutes}-minute slot boundary.",
                    f"/{field}",
                )
            raise BookingRejected(
                "outside_opening_hours",
                f"The resource is not open for the whole of that time ({terms.timezone}).",
                "/start",
            )
    run = [(s, e) for s, e in overlapping if request.start <= s and e <= request.end]
    if any(earlier[1] != later[0] for earlier, later in itertools.pairwise(run)):
        raise BookingRejected(
            "outside_opening_hours", f"The resource closes during that time ({terms.timezone}).", "/start"
        )
    return run


def peak_usage(bookings: Iterable[Booking], start: datetime, end: datetime) -> int:
    """The most capacity the given bookings use at any instant of `[start, end)` (a sweep over their edges)."""
    edges: list[tuple[datetime, int]] = []
    for booking in bookings:
        overlap_start, overlap_end = max(booking.start, start), min(booking.end, end)
        if overlap_start < overlap_end:
            edges += [(overlap_start, booking.quantity), (overlap_end, -booking.quantity)]
    edges.sort(key=lambda edge: (edge[0], edge[1]))  # at one instant, ends before starts
    peak = level = 0
    for _, delta in edges:
        level += delta
        peak = max(peak, level)
    return peak


def normalized_email(address: str, pointer: str) -> str:
    """The address as stored and shown, or InvalidInput: checked by email-validator (syntax only, no
    DNS: no control, zero-width or other unsafe characters, no quoted local part, no markup, a valid
    internationalized domain), in the library's normal form: Unicode NFC, the domain decoded from
    IDNA to Unicode and lowercased by IDNA's rules. The local part keeps its case: a mailbox may
    tell `Straße` from `strasse`, so the address mail goes to is the one given."""
    try:
        checked = email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        raise InvalidInput(f"Not an email address: {error}", errors=(FieldError(pointer, str(error)),)) from error
    return str(checked.normalized)


def email_key(normalized: str) -> str:
    """What two addresses of one customer share (`normalized_email`'s form in, the key out): the
    local part casefolded (then NFC again, which a casefold can undo), the domain as it is. So
    `ÄDA@Example.org` and `äda@example.org` are one customer; `ß.de` and `ss.de` stay two domains.
    At most 350 characters: a 64-octet local part casefolds to at most 96, and the domain is 253."""
    local, _, domain = normalized.rpartition("@")
    return unicodedata.normalize("NFC", local.casefold()) + "@" + domain


def place(terms: ResourceTerms, request: BookingRequest, blocking: Sequence[Booking], now: datetime) -> Booking:
    """A new booking if it fits beside the bookings that block capacity now, else SlotUnavailable."""
    slots = check_request(terms, request, now)
    if peak_usage(blocking, request.start, request.end) + request.quantity > terms.capacity:
        raise SlotUnavailable("That time is no longer available.")
    price = Money(terms.price_per_slot.amount * slots * request.quantity, terms.price_per_slot.currency)
    free = price.is_zero
    return Booking(
        id=new_id("bkg"),
        organization_id=request.organization_id,
        resource_id=terms.id,
        start=request.start,
        end=request.end,
        quantity=request.quantity,
        customer_name=request.customer_name,
        customer_email=normalized_email(request.customer_email, "/customer/email"),
        status=Status.CONFIRMED if free else Status.PENDING,
        hold_expires_at=None if free else now + timedelta(minutes=terms.hold_minutes),
        price=price,
        metadata=dict(request.metadata),
        payment_token=request.payment_token,
        cancellation_reason=None,
        exclusive=terms.capacity == 1,
        version=1,
        created_at=now,
        updated_at=now,
    )


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    remaining: int


def check_span(start: datetime, end: datetime, now: datetime) -> None:
    """An availability query spans more than nothing, at most 31 days, and ends within the horizon."""
    if end <= start:
        raise InvalidInput("`to` must be after `from`.", errors=(FieldError("/query/to", "must be after from"),))
    if end - start > MAX_AVAILABILITY_SPAN:
        raise InvalidInput("The span may be at most 31 days.", errors=(FieldError("/query/to", "at most 31 days"),))
    if end > now + HORIZON:
        raise InvalidInput(
            "Availability is known at most 730 days ahead.", errors=(FieldError("/query/to", "at most 730 days ahead"),)
        )


def availability(
    terms: ResourceTerms, start: datetime, end: datetime, blocking: Sequence[Booking], now: datetime
) -> list[Slot]:
    """Every future slot inside opening hours within `[start, end)` and the capacity it has left."""
    check_span(start, end, now)
    slots: list[Slot] = []
    if end <= now:
        return slots
    grid = [(a, b) for a, b in slots_between(terms, max(start, now), end) if a >= start and b <= end and a > now]
    for (slot_start, slot_end), overlapping in zip(grid, _overlapping_each(grid, blocking), strict=True):
        used = peak_usage(overlapping, slot_start, slot_end)
        slots.append(Slot(slot_start, slot_end, max(terms.capacity - used, 0)))
    return slots


def unchanged_until(slots: Sequence[Slot], blocking: Sequence[Booking]) -> datetime | None:
    """Until when an availability answer stays true with no write (None: until one): the first slot's
    start (a slot under way is no longer offered) or the first live hold's lapse (its capacity returns)."""
    moments = [slot.start for slot in slots[:1]]
    moments += [b.hold_expires_at for b in blocking if b.status is Status.PENDING and b.hold_expires_at is not None]
    return min(moments, default=None)


def _overlapping_each(
    grid: Sequence[tuple[datetime, datetime]], bookings: Sequence[Booking]
) -> Iterable[list[Booking]]:
    """For each slot of a time-ordered grid, the bookings that overlap it: one pass, not slots x bookings."""
    waiting = sorted(bookings, key=lambda booking: booking.start)
    active: list[tuple[datetime, int, Booking]] = []  # a heap by end
    taken = 0
    for slot_start, slot_end in grid:
        while taken < len(waiting) and waiting[taken].start < slot_end:
            heapq.heappush(active, (waiting[taken].end, taken, waiting[taken]))
            taken += 1
        while active and active[0][0] <= slot_start:
            heapq.heappop(active)
        yield [booking for _, _, booking in active]
