"""Payments and refunds: what was charged for a booking, what was given back, and the rules between them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bookwell.platform.kernel.errors import Conflict
from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import InvalidInput
from bookwell.platform.kernel.errors import NotFound
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.kernel.money import Money

CHARGING_SAGA = "booking"  # the saga type that charges a booking's payment (booking/tasks.py)


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    CAPTURED = "captured"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class NotRefundable(Conflict):
    code = "payment_not_refundable"
    title = "Payment not refundable"


class CurrencyMismatch(InvalidInput):
    code = "currency_mismatch"
    title = "Currency mismatch"


class RefundTooLarge(InvalidInput):
    code = "refund_exceeds_captured"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=(FieldError("/amount", detail),))


@dataclass
class Refund:
    """Money given back from a captured payment; `pending` until the provider answers."""

    id: str
    organization_id: str
    payment_id: str
    amount: int  # minor units of `currency`, the payment's
    currency: str
    status: RefundStatus
    reason: str
    provider_reference: str | None
    failure_code: str | None
    created_at: datetime
    updated_at: datetime


@dataclass
class Payment:
    """The charge for one booking: at most one per booking, captured at most once.

    `refund_reserved` is what pending and succeeded refunds add up to; it never exceeds the
    captured amount (checked here under the payment's row lock, and by a database constraint).
    """

    id: str
    organization_id: str
    booking_id: str
    amount: Money
    token: str
    status: PaymentStatus
    provider: str
    provider_reference: str | None
    failure_code: str | None
    attempts: int  # charge calls sent to the provider; > 0 means it may have acted
    refund_reserved: int
    refunded_amount: int
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def open(
        cls, *, organization_id: str, booking_id: str, amount: Money, token: str, provider: str, now: datetime
    ) -> Payment:
        return cls(
            id=new_id("pay"),
            organization_id=organization_id,
            booking_id=booking_id,
            amount=amount,
            token=token,
            status=PaymentStatus.PENDING,
            provider=provider,
            provider_reference=None,
            failure_code=None,
            attempts=0,
            refund_reserved=0,
            refunded_amount=0,
            version=1,
            created_at=now,
            updated_at=now,
        )

    def _touch(self, now: datetime) -> None:
        self.version += 1
        self.updated_at = now

    def capture(self, reference: str | None, now: datetime) -> None:
        self.status = PaymentStatus.CAPTURED
        self.provider_reference = reference
        self.failure_code = None
        self._touch(now)

    def fail(self, code: str, now: datetime, reference: str | None = None) -> None:
        self.status = PaymentStatus.FAILED
        self.failure_code = code
        self.provider_reference = reference or self.provider_reference
        self._touch(now)

    @property
    def refundable(self) -> int:
        """What may still be asked back."""
        if self.status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            return 0
        return self.amount.amount - self.refund_reserved

    def request_refund(self, money: Money | None, reason: str, now: datetime) -> Refund:
        """Reserve `money` (default: all that is left) for a new pending refund."""
        if self.status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            raise NotRefundable(f"A {self.status} payment cannot be refunded.")
        if money is not None and money.currency != self.amount.currency:
            raise CurrencyMismatch(
                f"This payment is in {self.amount.currency}; a refund of it is too.",
                errors=(FieldError("/amount/currency", f"must be {self.amount.currency}"),),
            )
        amount = self.refundable if money is None else money.amount
        if amount <= 0 or amount > self.refundable:
            raise RefundTooLarge(f"At most {self.refundable} {self.amount.currency} minor units can be refunded.")
        self.refund_reserved += amount
        self._touch(now)
        return Refund(
            new_id("rfd"),
            self.organization_id,
            self.id,
            amount,
            self.amount.currency,
            RefundStatus.PENDING,
            reason,
            None,
            None,
            now,
            now,
        )

    def settle_refund(
        self, refund: Refund, *, succeeded: bool, reference: str | None, failure: str | None, now: datetime
    ) -> None:
        """Apply the provider's answer to a pending refund of this payment."""
        refund.status = RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED
        refund.provider_reference = reference
        refund.failure_code = failure
        refund.updated_at = now
        if succeeded:
            self.refunded_amount += refund.amount
            full = self.refunded_amount == self.amount.amount
            self.status = PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED
        else:
            self.refund_reserved -= refund.amount
        self._touch(now)


@dataclass(frozen=True)
class PaymentOverview:
    """A payment with its refunds and, when its booking's saga runs or ran, where that stands."""

    payment: Payment
    refunds: list[Refund]
    saga: dict[str, Any] | None
