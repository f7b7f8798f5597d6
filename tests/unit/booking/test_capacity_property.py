"""No double booking: the service, driven at random with a moving clock, agrees with a minute-by-minute model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from unittest.mock import patch

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule

from bookwell.booking import service
from bookwell.booking.domain import WEEKDAYS
from bookwell.booking.domain import BookingRejected
from bookwell.booking.domain import BookingRequest
from bookwell.booking.domain import InvalidTransition
from bookwell.booking.domain import ResourceTerms
from bookwell.booking.domain import SlotUnavailable
from bookwell.booking.domain import Status
from bookwell.platform.kernel.money import Money
from tests.unit.booking.fakes import FakeBookingUnitOfWork

ORG = "org_01AAAAAAAAAAAAAAAAAAAAAAAA"
RESOURCE = "res_01AAAAAAAAAAAAAAAAAAAAAAAA"
T0 = datetime(2027, 1, 4, 22, 0, tzinfo=UTC)  # two hours before midnight: bookings may run across it
SLOT = 15  # minutes
SLOTS_AHEAD = 12  # requests start within 3 hours of T0: few slots, so bookings often collide and touch
MAX_SLOTS = 4
MINUTES = (SLOTS_AHEAD + MAX_SLOTS) * SLOT  # every request lies within [T0, T0 + MINUTES)


def minute(moment: datetime) -> int:
    return int((moment - T0).total_seconds()) // 60


@dataclass
class Modelled:
    """What the model knows of one booking: minutes after T0, and its own idea of the status."""

    start: int
    end: int
    quantity: int
    status: Status
    hold_expires_at: datetime | None

    def blocks(self, now: datetime) -> bool:
        if self.status is Status.CONFIRMED:
            return True
        return self.status is Status.PENDING and self.hold_expires_at is not None and now < self.hold_expires_at

    def lapsed(self, now: datetime) -> bool:
        return self.status is Status.PENDING and self.hold_expires_at is not None and now >= self.hold_expires_at


def usage(ranges: list[tuple[int, int, int]]) -> list[int]:
    """Capacity used in each minute after T0, by brute force."""
    used = [0] * MINUTES
    for start, end, quantity in ranges:
        for m in range(start, end):
            used[m] += quantity
    return used


class CapacityMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.uow = FakeBookingUnitOfWork()
        self.model: dict[str, Modelled] = {}
        self.capacity = 0
        self.priced = False
        self.hold_minutes = 0
        self._clock = patch("bookwell.booking.service.utcnow", lambda: self.now)
        self._clock.start()

    def teardown(self) -> None:
        self._clock.stop()

    @initialize(capacity=st.integers(1, 4), priced=st.booleans(), hold_minutes=st.integers(1, 30))
    def open_resource(self, capacity: int, priced: bool, hold_minutes: int) -> None:
        self.capacity, self.priced, self.hold_minutes = capacity, priced, hold_minutes
        self.uow.resources.add(
            ORG,
            ResourceTerms(
                id=RESOURCE,
                timezone="UTC",
                capacity=capacity,
                slot_minutes=SLOT,
                min_slots=1,
                max_slots=MAX_SLOTS,
                opening_hours=dict.fromkeys(WEEKDAYS, ((0, 1440),)),
                price_per_slot=Money(300 if priced else 0, "EUR"),
                hold_minutes=hold_minutes,
                active=True,
            ),
        )

    def model_usage(self) -> list[int]:
        return usage([(b.start, b.end, b.quantity) for b in self.model.values() if b.blocks(self.now)])

    @rule(minutes=st.integers(1, 15))
    def advance_clock(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @precondition(lambda self: any(b.blocks(self.now) and b.hold_expires_at for b in self.model.values()))
    @rule(pick=st.integers(0, 10_000))
    def advance_clock_to_the_end_of_a_hold(self, pick: int) -> None:
        ends = sorted({b.hold_expires_at for b in self.model.values() if b.blocks(self.now) and b.hold_expires_at})
        self.now = ends[pick % len(ends)]  # the very instant a hold lapses

    @rule(first=st.integers(0, SLOTS_AHEAD - 1), slots=st.integers(1, MAX_SLOTS), units=st.integers(0, 4))
    def place(self, first: int, slots: int, units: int) -> None:
        self._place(first * SLOT, (first + slots) * SLOT, units)

    @precondition(lambda self: self.model)
    @rule(pick=st.integers(0, 10_000), slots=st.integers(1, MAX_SLOTS), units=st.integers(0, 4), after=st.booleans())
    def place_next_to_another(self, pick: int, slots: int, units: int, after: bool) -> None:
        """Start where a booking ends, or end where one starts: edges are where off-by-one bugs live."""
        other = self.model[sorted(self.model)[pick % len(self.model)]]
        start = other.end if after else max(other.start - slots * SLOT, 0)
        end = min(start + slots * SLOT, MINUTES)
        if start < end:
            self._place(start, end, units)

    def _place(self, start: int, end: int, units: int) -> None:
        quantity = 1 + units % (self.capacity + 1)  # 1 to one more than fits at all
        request = BookingRequest(
            organization_id=ORG,
            resource_id=RESOURCE,
            start=T0 + timedelta(minutes=start),
            end=T0 + timedelta(minutes=end),
            quantity=quantity,
            customer_name="Ada",
            customer_email="ada@example.com",
            payment_token="tok" if self.priced else None,
            metadata={},
        )
        used = self.model_usage()
        if request.start <= self.now:
            expected = "start_in_past"
        elif quantity > self.capacity:
            expected = "quantity_exceeds_capacity"
        elif all(used[m] + quantity <= self.capacity for m in range(start, end)):
            expected = "accepted"
        else:
            expected = "slot_unavailable"

        try:
            booking = service.place_booking(uow=self.uow, request=request)
        except BookingRejected as error:
            assert error.code == expected  # noqa: PT017 - the outcome varies per step
            return
        except SlotUnavailable:
            assert expected == "slot_unavailable"
            return
        assert expected == "accepted", f"accepted a booking the model refuses ({expected})"

        for other in self.model.values():  # holds in the way were marked expired in the same transaction
            if other.lapsed(self.now) and other.start < end and start < other.end:
                other.status, other.hold_expires_at = Status.EXPIRED, None
        hold = self.now + timedelta(minutes=self.hold_minutes) if self.priced else None
        status = Status.PENDING if self.priced else Status.CONFIRMED
        assert (booking.status, booking.hold_expires_at) == (status, hold)
        self.model[booking.id] = Modelled(start, end, quantity, status, hold)

    @precondition(lambda self: self.model)
    @rule(pick=st.integers(0, 10_000))
    def cancel(self, pick: int) -> None:
        booking_id = sorted(self.model)[pick % len(self.model)]
        modelled = self.model[booking_id]
        if modelled.status in (Status.PENDING, Status.CONFIRMED):
            cancelled = service.cancel_booking(uow=self.uow, organization_id=ORG, booking_id=booking_id, reason="r")
            assert cancelled.status is Status.CANCELLED
            modelled.status, modelled.hold_expires_at = Status.CANCELLED, None
        else:
            try:
                service.cancel_booking(uow=self.uow, organization_id=ORG, booking_id=booking_id, reason="r")
            except InvalidTransition:
                return
            raise AssertionError(f"a {modelled.status} booking was cancelled")

    @rule()
    def expire(self) -> None:
        lapsed = [b for b in self.model.values() if b.lapsed(self.now)]
        assert service.expire_holds(uow=self.uow) == len(lapsed)
        for b in lapsed:
            b.status, b.hold_expires_at = Status.EXPIRED, None

    @rule()
    def availability_matches_the_model(self) -> None:
        slots = service.availability(
            uow=self.uow, organization_id=ORG, resource_id=RESOURCE, start=T0, end=T0 + timedelta(minutes=MINUTES)
        ).slots
        used = self.model_usage()
        expected = [
            (T0 + timedelta(minutes=m), max(self.capacity - max(used[m : m + SLOT]), 0))
            for m in range(0, MINUTES, SLOT)
            if T0 + timedelta(minutes=m) > self.now
        ]
        assert [(slot.start, slot.remaining) for slot in slots] == expected

    @invariant()
    def statuses_match_the_model(self) -> None:
        stored = {b.id: (b.status, b.hold_expires_at) for b in self.uow.bookings.stored}
        assert stored == {i: (b.status, b.hold_expires_at) for i, b in self.model.items()}

    @invariant()
    def stored_bookings_never_exceed_capacity(self) -> None:
        blocking = [
            b
            for b in self.uow.bookings.stored
            if b.status is Status.CONFIRMED
            or (b.status is Status.PENDING and b.hold_expires_at is not None and b.hold_expires_at > self.now)
        ]
        used = usage([(minute(b.start), minute(b.end), b.quantity) for b in blocking])
        assert max(used) <= self.capacity
        assert used == self.model_usage()


CapacityMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None, database=None)
TestCapacity = CapacityMachine.TestCase
