"""Booking's events, in event schema v1 (`contract/events/v1.yaml`): the booking as API v1 shows it."""

from __future__ import annotations

from bookwell.booking.domain import Booking
from bookwell.booking.presenters import v1
from bookwell.platform.kernel.events import Event


def booking_event(booking: Booking, kind: str) -> Event:
    """`booking.<kind>`, carrying the booking as it now stands."""
    return Event(
        type=f"booking.{kind}",
        organization_id=booking.organization_id,
        aggregate_id=booking.id,
        object=v1.booking(booking),
    )
