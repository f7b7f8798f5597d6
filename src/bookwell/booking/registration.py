"""Booking registers itself: its unit of work, its views (with the charging saga's state), the
booking saga's handlers and steps, the hold-expiry job and `bookwell holds`. Payments must be
registered first: the saga charges through its facade."""

from __future__ import annotations

from functools import partial
from typing import Any

import click
import structlog

from bookwell.booking import api
from bookwell.booking import service
from bookwell.booking.adapters.sql import SqlBookingUnitOfWork
from bookwell.booking.cli import holds
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.booking.tasks import BookingSaga
from bookwell.payments.facade import CHARGING_SAGA
from bookwell.payments.facade import Payments
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.platform.observability.metrics import BOOKINGS
from bookwell.platform.registry import Registry
from bookwell.platform.workflow.saga import Sagas

log = structlog.get_logger("bookwell.booking")
commands: tuple[click.Command, ...] = (holds,)


def register(registry: Registry) -> None:
    """Wire booking into `registry`."""
    uow = partial(SqlBookingUnitOfWork, registry.database, cache=registry.cache)
    registry.add_unit_of_work(BookingUnitOfWork, uow)
    registry.inject(api.uow, uow)
    registry.inject(api.cache, lambda: registry.cache)
    registry.inject(api.saga_state, partial(_saga_state, registry.sagas))
    registry.add_views(api.views)
    BookingSaga(
        sagas=registry.sagas,
        database=registry.database,
        booking_uow=uow,
        payments=registry.lookup(Payments),
        kick=registry.kick_saga,
    ).register(registry.subscriptions)

    def expire_holds() -> int:
        total = service.expire_all_holds(uow=uow)
        if total:
            log.info("holds_expired", count=total)
        return total

    registry.schedule("bookwell.holds.expire", registry.settings.holds_expire_every_s, expire_holds)
    registry.meter(FINAL_STATUSES, _count_booking)


# The statuses a booking ends in (cancelled follows confirmed): each counted when its event is relayed.
FINAL_STATUSES = ("booking.confirmed", "booking.failed", "booking.expired", "booking.cancelled")


def _count_booking(event: LoggedEvent) -> None:
    BOOKINGS.labels(event.type.removeprefix("booking.")).inc()


def _saga_state(sagas: Sagas, booking_id: str) -> dict[str, Any] | None:
    view = sagas.view(CHARGING_SAGA, booking_id)
    return None if view is None else view.as_dict()
