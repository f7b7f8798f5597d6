"""What other contexts may use of payments: a booking's payment, its charge and its refunds.

Each function runs in its own unit of work, which joins the caller's request transaction when
there is one (so a saga step's changes and its record commit together).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from bookwell.payments import service
from bookwell.payments.adapters.sql import SqlPaymentsUnitOfWork
from bookwell.payments.domain import CHARGING_SAGA
from bookwell.payments.domain import Payment
from bookwell.payments.domain import PaymentStatus
from bookwell.payments.domain import Refund
from bookwell.payments.domain import RefundStatus
from bookwell.payments.ports import PaymentProvider
from bookwell.payments.ports import ProviderUnavailable
from bookwell.platform.db import Database
from bookwell.platform.kernel.money import Money
from bookwell.platform.observability.metrics import observe_money

__all__ = ["CHARGING_SAGA", "Payment", "PaymentStatus", "Payments", "ProviderUnavailable", "Refund", "RefundStatus"]


class Payments:
    """Payments as the booking saga sees them."""

    def __init__(self, database: Database, provider: PaymentProvider, kick: Callable[[str], None]) -> None:
        self._uow = partial(SqlPaymentsUnitOfWork, database)
        self.provider = provider
        self.kick = kick

    def open(self, *, organization_id: str, booking_id: str, amount: Money, token: str) -> Payment:
        return service.open_payment(
            uow=self._uow(),
            organization_id=organization_id,
            booking_id=booking_id,
            amount=amount,
            token=token,
            provider=self.provider.name,
        )

    def for_booking(self, booking_id: str) -> Payment | None:
        with self._uow(readonly=True) as uow:
            return uow.payments.for_booking(booking_id)

    def charge(self, payment_id: str) -> Payment:
        """See `service.charge`; raises ProviderUnavailable when the provider gave no answer."""
        return service.charge(uow=self._uow, provider=self.provider, payment_id=payment_id, moved=observe_money)

    def abandon(self, payment_id: str, code: str) -> bool:
        return service.abandon(uow=self._uow(), payment_id=payment_id, code=code)

    def refund_what_is_left(self, payment_id: str, reason: str) -> Refund | None:
        """Refund all that is left to refund (None when nothing is); carried out by a refund saga."""
        return service.refund_what_is_left(uow=self._uow(), payment_id=payment_id, reason=reason, kick=self.kick)

    def refund_state(self, refund_id: str) -> RefundStatus:
        return service.refund_state(uow=self._uow(readonly=True), refund_id=refund_id)
