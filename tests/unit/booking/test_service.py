"""Booking use cases on an in-memory unit of work, with the clock pinned."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from bookwell.booking import service
from bookwell.booking.domain import WEEKDAYS
from bookwell.booking.domain import BookingNotFound
from bookwell.booking.domain import BookingRejected
from bookwell.booking.domain import BookingRequest
from bookwell.booking.domain import InvalidTransition
from bookwell.booking.domain import ResourceTerms
from bookwell.booking.domain import SlotUnavailable
from bookwell.booking.domain import Status
from bookwell.booking.ports import BookingFilter
from bookwell.platform.kernel.errors import Busy
from bookwell.platform.kernel.money import Money
from bookwell.platform.kernel.pages import PageRequest
from tests.unit.booking.fakes import FakeBookingUnitOfWork

ORG = "org_01AAAAAAAAAAAAAAAAAAAAAAAA"
OTHER_ORG = "org_01BBBBBBBBBBBBBBBBBBBBBBBB"
FREE_ROOM = "res_01AAAAAAAAAAAAAAAAAAAAAAAA"
PAID_ROOM = "res_01BBBBBBBBBBBBBBBBBBBBBBBB"
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # a Monday morning
HOUR = timedelta(hours=1)


def terms(resource_id: str, **changes: object) -> ResourceTerms:
    base = ResourceTerms(
        id=resource_id,
        timezone="UTC",
        capacity=1,
        slot_minutes=60,
        min_slots=1,
        max_slots=4,
        opening_hours=dict.fromkeys(WEEKDAYS, ((540, 1020),)),  # 09:00-17:00
        price_per_slot=Money(500, "EUR") if resource_id == PAID_ROOM else Money(0, "EUR"),
        hold_minutes=10,
        active=True,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("bookwell.booking.service.utcnow", clock)
    return clock


@pytest.fixture
def uow() -> FakeBookingUnitOfWork:
    uow = FakeBookingUnitOfWork()
    uow.resources.add(ORG, terms(FREE_ROOM, capacity=2))
    uow.resources.add(ORG, terms(PAID_ROOM))
    return uow


def at(hour: float) -> datetime:
    return T0.replace(hour=0) + timedelta(hours=hour)


def request(
    resource_id: str = FREE_ROOM,
    start: float = 10,
    end: float = 11,
    *,
    quantity: int = 1,
    organization_id: str = ORG,
    email: str = "ada@example.com",
) -> BookingRequest:
    return BookingRequest(
        organization_id=organization_id,
        resource_id=resource_id,
        start=at(start),
        end=at(end),
        quantity=quantity,
        customer_name="Ada",
        customer_email=email,
        payment_token="tok" if resource_id == PAID_ROOM else None,
        metadata={},
    )


def event_types(uow: FakeBookingUnitOfWork) -> list[tuple[str, str]]:
    return [(e.type, e.aggregate_id) for e in uow.events.recorded]


def stored(uow: FakeBookingUnitOfWork, booking_id: str) -> Status:
    return service.get_booking(uow=uow, organization_id=ORG, booking_id=booking_id).status


# --- place_booking -----------------------------------------------------------------------------------------------


def test_placing_locks_the_resource_and_commits_the_booking_with_its_events(
    clock: Clock, uow: FakeBookingUnitOfWork
) -> None:
    booking = service.place_booking(uow=uow, request=request())
    assert uow.resources.calls == [(ORG, FREE_ROOM, True)]
    assert uow.commits == 1
    assert event_types(uow) == [("booking.created", booking.id), ("booking.confirmed", booking.id)]
    assert [e.object["status"] for e in uow.events.recorded] == ["confirmed", "confirmed"]
    assert service.get_booking(uow=uow, organization_id=ORG, booking_id=booking.id) == booking
    assert (booking.status, booking.created_at) == (Status.CONFIRMED, clock.now)


def test_a_paid_booking_is_a_hold_with_only_a_created_event(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    booking = service.place_booking(uow=uow, request=request(PAID_ROOM, 10, 12))
    assert (booking.status, booking.hold_expires_at) == (Status.PENDING, clock.now + timedelta(minutes=10))
    assert booking.price == Money(1000, "EUR")
    assert event_types(uow) == [("booking.created", booking.id)]


def test_a_live_hold_blocks_and_the_refusal_commits_nothing(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    hold = service.place_booking(uow=uow, request=request(PAID_ROOM, 10, 12))
    clock.advance(minutes=9, seconds=59)
    with pytest.raises(SlotUnavailable):
        service.place_booking(uow=uow, request=request(PAID_ROOM, 11, 12))
    assert uow.commits == 1
    assert [b.id for b in uow.bookings.stored] == [hold.id]
    assert event_types(uow) == [("booking.created", hold.id)]


def test_a_lapsed_hold_in_the_way_is_expired_and_does_not_block(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    hold = service.place_booking(uow=uow, request=request(PAID_ROOM, 10, 12))
    clock.advance(minutes=10)  # the hold ends at this very instant
    booking = service.place_booking(uow=uow, request=request(PAID_ROOM, 11, 12))
    assert booking.status is Status.PENDING
    expired = service.get_booking(uow=uow, organization_id=ORG, booking_id=hold.id)
    assert (expired.status, expired.hold_expires_at, expired.version) == (Status.EXPIRED, None, 2)
    assert event_types(uow) == [
        ("booking.created", hold.id),
        ("booking.expired", hold.id),
        ("booking.created", booking.id),
    ]
    assert uow.commits == 2


def test_a_lapsed_hold_outside_the_request_is_left_for_the_expiry_job(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    hold = service.place_booking(uow=uow, request=request(PAID_ROOM, 10, 11))
    clock.advance(minutes=30)
    service.place_booking(uow=uow, request=request(PAID_ROOM, 11, 12))
    assert stored(uow, hold.id) is Status.PENDING


def test_a_rule_broken_with_a_lapsed_hold_in_the_way_rolls_the_expiry_back(
    clock: Clock, uow: FakeBookingUnitOfWork
) -> None:
    hold = service.place_booking(uow=uow, request=request(PAID_ROOM, 10, 12))
    clock.advance(minutes=30)
    unpaid = dataclasses.replace(request(PAID_ROOM, 10, 11), payment_token=None)
    with pytest.raises(BookingRejected) as error:
        service.place_booking(uow=uow, request=unpaid)
    assert error.value.code == "payment_required"
    assert stored(uow, hold.id) is Status.PENDING
    assert uow.commits == 1
    assert event_types(uow) == [("booking.created", hold.id)]


@pytest.mark.parametrize(
    "bad",
    [request(resource_id="res_01ZZZZZZZZZZZZZZZZZZZZZZZZ"), request(organization_id=OTHER_ORG)],
    ids=["no_such_resource", "another_organizations_resource"],
)
def test_an_unknown_resource_is_rejected(clock: Clock, uow: FakeBookingUnitOfWork, bad: BookingRequest) -> None:
    with pytest.raises(BookingRejected) as error:
        service.place_booking(uow=uow, request=bad)
    assert error.value.code == "unknown_resource"
    assert [e.pointer for e in error.value.errors] == ["/resource_id"]
    assert (uow.commits, uow.bookings.stored, uow.events.recorded) == (0, [], [])


def test_a_broken_rule_commits_nothing(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    with pytest.raises(BookingRejected) as error:
        service.place_booking(uow=uow, request=request(start=17, end=18))
    assert error.value.code == "outside_opening_hours"
    assert (uow.commits, uow.bookings.stored, uow.events.recorded) == (0, [], [])


def test_the_clock_decides_what_is_in_the_past(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    clock.now = at(10)
    with pytest.raises(BookingRejected) as error:
        service.place_booking(uow=uow, request=request(start=10, end=11))
    assert error.value.code == "start_in_past"
    assert service.place_booking(uow=uow, request=request(start=11, end=12)).start == at(11)


def test_capacity_is_shared_by_quantity(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    service.place_booking(uow=uow, request=request(start=10, end=12))
    service.place_booking(uow=uow, request=request(start=11, end=13))
    with pytest.raises(SlotUnavailable):
        service.place_booking(uow=uow, request=request(start=11, end=12))
    assert service.place_booking(uow=uow, request=request(start=12, end=13)).quantity == 1


# --- cancel_booking ----------------------------------------------------------------------------------------------


def test_cancelling_records_an_event_and_frees_the_capacity(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    first = service.place_booking(uow=uow, request=request(quantity=2))
    with pytest.raises(SlotUnavailable):
        service.place_booking(uow=uow, request=request())
    clock.advance(minutes=1)
    cancelled = service.cancel_booking(uow=uow, organization_id=ORG, booking_id=first.id, reason="ill")
    assert (cancelled.status, cancelled.cancellation_reason, cancelled.version) == (Status.CANCELLED, "ill", 2)
    assert cancelled.updated_at == clock.now
    assert uow.events.recorded[-1].type == "booking.cancelled"
    assert uow.events.recorded[-1].object["cancellation_reason"] == "ill"
    assert stored(uow, first.id) is Status.CANCELLED
    assert service.place_booking(uow=uow, request=request(quantity=2)).status is Status.CONFIRMED


def test_cancelling_a_hold_frees_it_before_it_would_lapse(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    hold = service.place_booking(uow=uow, request=request(PAID_ROOM))
    service.cancel_booking(uow=uow, organization_id=ORG, booking_id=hold.id, reason=None)
    assert service.place_booking(uow=uow, request=request(PAID_ROOM)).status is Status.PENDING


def test_cancelling_twice_is_an_invalid_transition(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    booking = service.place_booking(uow=uow, request=request())
    service.cancel_booking(uow=uow, organization_id=ORG, booking_id=booking.id, reason=None)
    commits, events = uow.commits, len(uow.events.recorded)
    with pytest.raises(InvalidTransition):
        service.cancel_booking(uow=uow, organization_id=ORG, booking_id=booking.id, reason="again")
    assert (uow.commits, len(uow.events.recorded)) == (commits, events)
    again = service.get_booking(uow=uow, organization_id=ORG, booking_id=booking.id)
    assert (again.cancellation_reason, again.version) == (None, 2)


def test_an_expired_hold_cannot_be_cancelled(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    hold = service.place_booking(uow=uow, request=request(PAID_ROOM))
    clock.advance(minutes=11)
    assert service.expire_holds(uow=uow) == 1
    with pytest.raises(InvalidTransition):
        service.cancel_booking(uow=uow, organization_id=ORG, booking_id=hold.id, reason=None)


def test_cancelling_an_unknown_or_foreign_booking_is_not_found(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    booking = service.place_booking(uow=uow, request=request())
    for organization_id, booking_id in ((ORG, "bkg_01ZZZZZZZZZZZZZZZZZZZZZZZZ"), (OTHER_ORG, booking.id)):
        with pytest.raises(BookingNotFound):
            service.cancel_booking(uow=uow, organization_id=organization_id, booking_id=booking_id, reason=None)
    assert stored(uow, booking.id) is Status.CONFIRMED


def test_a_booking_changed_by_another_transaction_meanwhile_is_busy(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    booking = service.place_booking(uow=uow, request=request())
    read_before_the_other_write = uow.bookings.get(ORG, booking.id)
    uow.state["bookings"][booking.id].version = 2  # another request commits its change now
    uow.bookings.get = lambda *_: read_before_the_other_write  # type: ignore[method-assign]
    with pytest.raises(Busy):
        service.cancel_booking(uow=uow, organization_id=ORG, booking_id=booking.id, reason=None)
    assert uow.state["bookings"][booking.id].status is Status.CONFIRMED
    assert uow.events.recorded[-1].type == "booking.confirmed"


# --- expire_holds ------------------------------------------------------------------------------------------------


def test_expiry_marks_only_lapsed_holds_and_counts_them(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    uow.resources.add(OTHER_ORG, terms("res_01CCCCCCCCCCCCCCCCCCCCCCCC", price_per_slot=Money(100, "EUR")))
    early = service.place_booking(uow=uow, request=request(PAID_ROOM, 10, 11))
    foreign = service.place_booking(
        uow=uow,
        request=dataclasses.replace(
            request(PAID_ROOM, 10, 11), organization_id=OTHER_ORG, resource_id="res_01CCCCCCCCCCCCCCCCCCCCCCCC"
        ),
    )
    confirmed = service.place_booking(uow=uow, request=request(FREE_ROOM, 10, 11))
    clock.advance(minutes=5)
    late = service.place_booking(uow=uow, request=request(PAID_ROOM, 12, 13))
    clock.advance(minutes=5)  # the first two holds end now; the late one has five minutes left
    events_before = len(uow.events.recorded)

    assert service.expire_holds(uow=uow) == 2

    statuses = {b.id: b.status for b in uow.bookings.stored}
    assert statuses == {
        early.id: Status.EXPIRED,
        foreign.id: Status.EXPIRED,
        confirmed.id: Status.CONFIRMED,
        late.id: Status.PENDING,
    }
    assert sorted(event_types(uow)[events_before:]) == sorted(
        [("booking.expired", early.id), ("booking.expired", foreign.id)]
    )
    assert service.expire_holds(uow=uow) == 0
    clock.advance(minutes=5)
    assert service.expire_holds(uow=uow) == 1
    assert stored(uow, late.id) is Status.EXPIRED


def test_expiry_works_in_batches(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    for hour in (10, 11, 12):
        service.place_booking(uow=uow, request=request(PAID_ROOM, hour, hour + 1))
    clock.advance(hours=1)
    assert [service.expire_holds(uow=uow, batch=2) for _ in range(3)] == [2, 1, 0]
    assert {b.status for b in uow.bookings.stored} == {Status.EXPIRED}


# --- availability, get and list ----------------------------------------------------------------------------------


def test_availability_counts_live_holds_but_not_lapsed_ones(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    held = service.place_booking(uow=uow, request=request(PAID_ROOM, 10, 11))
    answer = service.availability(uow=uow, organization_id=ORG, resource_id=PAID_ROOM, start=at(9), end=at(12))
    assert [(s.start, s.remaining) for s in answer.slots] == [(at(9), 1), (at(10), 0), (at(11), 1)]
    assert answer.unchanged_until == held.hold_expires_at  # the hold lapses before the first slot starts
    assert uow.resources.calls[-1] == (ORG, PAID_ROOM, False)
    clock.advance(minutes=10)
    answer = service.availability(uow=uow, organization_id=ORG, resource_id=PAID_ROOM, start=at(9), end=at(12))
    assert [s.remaining for s in answer.slots] == [1, 1, 1]
    assert answer.unchanged_until == at(9)  # no live hold: until the first slot starts


def test_availability_of_an_unknown_resource_is_not_found(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    with pytest.raises(service.ResourceNotFound):
        service.availability(uow=uow, organization_id=OTHER_ORG, resource_id=FREE_ROOM, start=at(9), end=at(12))


def test_get_sees_only_the_organizations_own_bookings(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    booking = service.place_booking(uow=uow, request=request())
    with pytest.raises(BookingNotFound):
        service.get_booking(uow=uow, organization_id=OTHER_ORG, booking_id=booking.id)


def test_the_list_is_newest_first_filtered_and_paged(clock: Clock, uow: FakeBookingUnitOfWork) -> None:
    made = [
        service.place_booking(uow=uow, request=request(start=10, end=11)),
        service.place_booking(uow=uow, request=request(PAID_ROOM, 10, 11, email="bob@example.com")),
        service.place_booking(uow=uow, request=request(start=12, end=13)),
        service.place_booking(uow=uow, request=request(start=14, end=15)),
    ]
    ids = [b.id for b in made]

    def listed(filters: BookingFilter | None = None, page: PageRequest | None = None) -> list[str]:
        found = service.list_bookings(
            uow=uow, organization_id=ORG, filters=filters or BookingFilter(), page=page or PageRequest(10)
        )
        return [b.id for b in found.items]

    assert listed() == ids[::-1]
    assert listed(BookingFilter(resource_id=FREE_ROOM)) == [ids[3], ids[2], ids[0]]
    assert listed(BookingFilter(status=Status.PENDING)) == [ids[1]]
    assert listed(BookingFilter(customer_email="bob@example.com")) == [ids[1]]
    assert listed(BookingFilter(start_from=at(12), start_to=at(14))) == [ids[2]]
    first = service.list_bookings(uow=uow, organization_id=ORG, filters=BookingFilter(), page=PageRequest(3))
    assert ([b.id for b in first.items], first.has_more) == (ids[:0:-1], True)
    assert listed(page=PageRequest(3, after=first.items[-1].id)) == [ids[0]]
    theirs = service.list_bookings(uow=uow, organization_id=OTHER_ORG, filters=BookingFilter(), page=PageRequest(10))
    assert theirs.items == []
