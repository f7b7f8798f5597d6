"""The booking saga: a priced booking is confirmed only once its payment is captured.

Orchestrated here, persisted by the platform's saga engine (`platform/workflow/saga.py`), started by the
`booking.created` event (through the inbox: once per booking):

    charge ──captured──▶ booking confirmed                      (done: confirmed)
       │  └─captured, but the booking ended first (hold lapsed, cancelled)
       │                 ─▶ compensate: refund what is left ─▶ await_refund
       │                                        (done: refunded, or refund_failed for an operator)
       ├─declined──────▶ payment failed, booking failed, slot free (done: failed)
       ├─no answer─────▶ the same step again later (jittered backoff), same idempotency key
       └─booking ended before any charge reached the provider ─▶ payment failed (done: void)

Every step's changes and its record commit in one transaction. A worker that dies mid-step
leaves the saga at its last recorded step; the sweep runs that step again, and the provider's
idempotency key makes the repeated charge return the first outcome.

`booking.cancelled` of a booking with a captured payment refunds it as the resource's
cancellation policy says: all that is left when cancelled at least `refund_until_hours_before`
the start, nothing after.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import Any

import structlog

from bookwell.booking import service
from bookwell.booking.domain import Status
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.payments.facade import CHARGING_SAGA
from bookwell.payments.facade import Payments
from bookwell.payments.facade import PaymentStatus
from bookwell.payments.facade import ProviderUnavailable
from bookwell.payments.facade import RefundStatus
from bookwell.platform.db import Database
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.platform.workflow.saga import Retry
from bookwell.platform.workflow.saga import Saga
from bookwell.platform.workflow.saga import SagaLog
from bookwell.platform.workflow.saga import Sagas
from bookwell.platform.workflow.saga import note

SAGA = CHARGING_SAGA
log = structlog.get_logger("bookwell.booking.saga")


class BookingSaga:
    """The saga's event handlers and steps, wired by `register`."""

    def __init__(
        self,
        *,
        sagas: Sagas,
        database: Database,
        booking_uow: Callable[..., BookingUnitOfWork],
        payments: Payments,
        kick: Callable[[str], None],
    ) -> None:
        self.sagas = sagas
        self.database = database
        self.booking_uow = booking_uow
        self.payments = payments
        self.kick = kick

    def register(self, subscriptions: Subscriptions) -> None:
        """Subscribe the event handlers and define the steps."""
        subscriptions.subscribe("booking.saga.start", ["booking.created"], self.start)
        subscriptions.subscribe("booking.saga.cancelled", ["booking.cancelled"], self.cancelled)
        self.sagas.define(SAGA, "charge", self.charge)
        self.sagas.define(SAGA, "compensate", self.compensate)
        self.sagas.define(SAGA, "await_refund", self.await_refund)

    def start(self, event: LoggedEvent) -> None:
        """`booking.created`: open the payment and the saga of a priced pending booking."""
        booking = event.payload["object"]
        if booking["status"] != Status.PENDING or not booking["price"]["amount"]:
            return  # free: confirmed at once, nothing to charge
        stored = service.get_booking(  # the card token is not in events
            uow=self.booking_uow(readonly=True), organization_id=event.organization_id, booking_id=booking["id"]
        )
        payment = self.payments.open(
            organization_id=event.organization_id,
            booking_id=stored.id,
            amount=stored.price,
            token=stored.payment_token or "",
        )
        with self.booking_uow() as uow:
            data = {"organization_id": event.organization_id, "payment_id": payment.id}
            saga_id = uow.sagas.start(SAGA, stored.id, "charge", data)
            if saga_id is not None:
                uow.after_commit(lambda: self.kick(saga_id))
            uow.commit()

    def charge(self, saga: Saga, record: SagaLog) -> None:
        """Charge (or find out what an earlier, unanswered charge did), then settle the booking."""
        organization_id, payment_id = saga.data["organization_id"], saga.data["payment_id"]
        booking = service.get_booking(
            uow=self.booking_uow(readonly=True), organization_id=organization_id, booking_id=saga.subject_id
        )
        if booking.status is not Status.PENDING or booking.hold_lapsed(utcnow()):
            with SqlUnitOfWork(self.database, shared=True) as work:
                if self.payments.abandon(payment_id, code=f"booking_{_ended_as(booking.status)}"):
                    record.step(work, "abandoned", next_step=None, ended_as="void")
                    work.commit()
                    return
        try:
            payment = self.payments.charge(payment_id)
        except ProviderUnavailable as unavailable:
            raise Retry(unavailable.reason, not_before_s=unavailable.retry_after_s) from unavailable
        captured = payment.status is not PaymentStatus.FAILED
        with SqlUnitOfWork(self.database, shared=True) as work:
            settled = service.settle_payment(
                uow=self.booking_uow(), organization_id=organization_id, booking_id=saga.subject_id, captured=captured
            )
            detail: dict[str, Any] = {"payment_status": str(payment.status), "booking_status": str(settled.status)}
            if not captured:
                record.step(work, "declined", next_step=None, ended_as="failed", detail=detail)
            elif settled.status is Status.CONFIRMED:
                record.step(work, "captured", next_step=None, ended_as="confirmed", detail=detail)
            else:
                record.step(work, "captured_too_late", next_step="compensate", detail=detail)
            work.commit()

    def compensate(self, saga: Saga, record: SagaLog) -> None:
        """Give back a capture whose booking had ended: all that is left to refund (a cancellation's
        refund may already have asked for it), then wait for the refund's outcome."""
        with SqlUnitOfWork(self.database, shared=True) as work:
            refund = self.payments.refund_what_is_left(saga.data["payment_id"], reason="booking_ended")
            if refund is None:
                record.step(work, "nothing_left_to_refund", next_step=None, ended_as="refunded")
            else:
                record.step(work, "refund_requested", next_step="await_refund", data={"refund_id": refund.id})
            work.commit()

    def await_refund(self, saga: Saga, record: SagaLog) -> None:
        """The saga ends when its refund does: succeeded, or failed, which needs an operator."""
        state = self.payments.refund_state(saga.data["refund_id"])
        if state is RefundStatus.PENDING:
            raise Retry("the refund is still under way", not_before_s=1.0)
        succeeded = state is RefundStatus.SUCCEEDED
        if not succeeded:
            log.error("compensation_refund_failed", refund_id=saga.data["refund_id"], booking_id=saga.subject_id)
        with SqlUnitOfWork(self.database, shared=True) as work:
            record.step(
                work,
                "refund_succeeded" if succeeded else "refund_failed",
                next_step=None,
                ended_as="refunded" if succeeded else "refund_failed",
            )
            work.commit()

    def cancelled(self, event: LoggedEvent) -> None:
        """`booking.cancelled`: refund a captured payment as the cancellation policy says."""
        booking = event.payload["object"]
        payment = self.payments.for_booking(booking["id"])
        if payment is None:
            return
        if payment.status is PaymentStatus.PENDING:
            # Still charging: the saga's next step sees the cancellation and voids or refunds.
            saga_id = self.sagas.id_of(SAGA, booking["id"])
            if saga_id is not None:
                self.kick(saga_id)
            return
        if payment.refundable <= 0:
            return
        with self.booking_uow() as uow:
            terms = uow.resources.terms(event.organization_id, booking["resource_id"], lock=False)
        hours = terms.refund_until_hours_before if terms is not None else 0
        in_time = event.created_at <= datetime.fromisoformat(booking["start"]) - timedelta(hours=hours)
        with SqlUnitOfWork(self.database) as work:  # joins the handler's transaction, with its inbox row
            refund = self.payments.refund_what_is_left(payment.id, reason="cancelled") if in_time else None
            note(
                work,
                SAGA,
                booking["id"],
                "cancel",
                "refund_requested" if refund else "no_refund_by_policy",
                detail={"refund_id": refund.id if refund else None, "refund_until_hours_before": hours},
            )
            work.commit()


def _ended_as(status: Status) -> str:
    return "expired" if status is Status.PENDING else str(status)
