"""Payments' events, in event schema v1 (`contract/events/v1.yaml`): the payment as API v1 shows it,
with its refunds (and no saga: an event says what happened, not where a workflow stands)."""

from __future__ import annotations

from collections.abc import Sequence

from bookwell.payments.domain import Payment
from bookwell.payments.domain import Refund
from bookwell.payments.presenters import v1
from bookwell.platform.kernel.events import Event


def payment_event(payment: Payment, kind: str, refunds: Sequence[Refund]) -> Event:
    """`payment.<kind>`, carrying the payment and its refunds as they now stand."""
    return Event(
        type=f"payment.{kind}",
        organization_id=payment.organization_id,
        aggregate_id=payment.id,
        object=v1.payment(payment, refunds),
    )
