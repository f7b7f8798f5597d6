"""Payments' use cases: open a booking's payment, charge it once, refund within what was captured.

Calls to the provider never happen inside a transaction: a charge first records that an attempt
is being made (so a crash mid-call is known to have possibly charged), then asks the provider with
the payment's id as idempotency key, then records the answer. Asking again after a crash, a
timeout or an open breaker gets the first answer back, never a second charge.
"""

from __future__ import annotations

from collections.abc import Callable

from bookwell.payments.domain import Payment
from bookwell.payments.domain import PaymentNotFound
from bookwell.payments.domain import PaymentOverview
from bookwell.payments.domain import PaymentStatus
from bookwell.payments.domain import Refund
from bookwell.payments.domain import RefundStatus
from bookwell.payments.events import payment_event
from bookwell.payments.ports import PaymentProvider
from bookwell.payments.ports import PaymentsUnitOfWork
from bookwell.payments.ports import ProviderUnavailable
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.money import Money
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest

REFUND_SAGA = "refund"
UnitOfWorkFactory = Callable[[], PaymentsUnitOfWork]


def open_payment(
    *, uow: PaymentsUnitOfWork, organization_id: str, booking_id: str, amount: Money, token: str, provider: str
) -> Payment:
    """The booking's payment, opened as `pending` if it has none yet (at most one per booking)."""
    with uow:
        payment = uow.payments.for_booking(booking_id)
        if payment is None:
            payment = Payment.open(
                organization_id=organization_id,
                booking_id=booking_id,
                amount=amount,
                token=token,
                provider=provider,
                now=utcnow(),
            )
            uow.payments.add(payment)
            uow.commit()
    return payment


# Told, once the change is committed, of money that moved: ("captured" or "refunded", amount, currency).
MoneyMoved = Callable[[str, int, str], None]


def _unheard(_kind: str, _amount: int, _currency: str) -> None:
    """No one listens for money moving (the default)."""


def charge(
    *, uow: UnitOfWorkFactory, provider: PaymentProvider, payment_id: str, moved: MoneyMoved = _unheard
) -> Payment:
    """Charge a pending payment and record the provider's final answer (captured or failed); `moved`
    hears of a capture once it is committed.

    Raises the provider's ProviderUnavailable when it gave no answer; the payment stays pending
    with its attempt counted, and calling again later is safe. A payment already settled is
    returned as it is.
    """
    with uow() as work:
        payment = _locked(work, payment_id)
        if payment.status is not PaymentStatus.PENDING:
            return payment
        payment.attempts += 1
        work.payments.save(payment)
        work.commit()
    try:
        result = provider.charge(
            idempotency_key=f"charge-{payment.id}",
            amount=payment.amount.amount,
            currency=payment.amount.currency,
            token=payment.token,
        )
    except ProviderUnavailable as unavailable:
        if not unavailable.maybe_acted:
            _uncount_attempt(uow, payment_id)  # nothing reached the provider: no charge to find out about
        raise
    with uow() as work:
        payment = _locked(work, payment_id)
        if payment.status is PaymentStatus.PENDING:
            now = utcnow()
            if result.captured:
                payment.capture(result.reference, now)
                kind = "captured"
                captured = payment.amount
                work.after_commit(lambda: moved("captured", captured.amount, captured.currency))
            else:
                payment.fail(result.failure_code or "declined", now, result.reference)
                kind = "failed"
            work.payments.save(payment)
            work.events.add(payment_event(payment, kind, work.payments.refunds_of(payment.id)))
            work.commit()
    return payment


def _uncount_attempt(uow: UnitOfWorkFactory, payment_id: str) -> None:
    with uow() as work:
        payment = _locked(work, payment_id)
        if payment.status is PaymentStatus.PENDING and payment.attempts > 0:
            payment.attempts -= 1
            work.payments.save(payment)
            work.commit()


def abandon(*, uow: PaymentsUnitOfWork, payment_id: str, code: str) -> bool:
    """Fail a pending payment that never reached the provider (its booking ended first); False when
    it did reach it: then only the provider can say what happened, so it must be charged to find out."""
    with uow:
        payment = _locked(uow, payment_id)
        if payment.status is not PaymentStatus.PENDING or payment.attempts > 0:
            return False
        payment.fail(code, utcnow())
        uow.payments.save(payment)
        uow.events.add(payment_event(payment, "failed", uow.payments.refunds_of(payment.id)))
        uow.commit()
    return True


def request_refund(
    *,
    uow: PaymentsUnitOfWork,
    payment_id: str,
    amount: Money | None,
    reason: str,
    organization_id: str | None = None,
    kick: Callable[[str], None] | None = None,
) -> Refund:
    """Reserve a refund of a captured payment (all that is left when `amount` is None) and open the
    saga that carries it out. Under the payment's row lock, so concurrent requests cannot together
    ask back more than was captured (and a database constraint says the same)."""
    with uow:
        payment = _locked(uow, payment_id, organization_id)
        refund = _reserve(uow, payment, amount, reason, kick)
        uow.commit()
    return refund


def refund_what_is_left(
    *, uow: PaymentsUnitOfWork, payment_id: str, reason: str, kick: Callable[[str], None] | None = None
) -> Refund | None:
    """Refund all that is left of a captured payment; None when nothing is (decided under the lock,
    so a cancellation's refund and a compensation's never ask for the same money twice)."""
    with uow:
        payment = _locked(uow, payment_id)
        if payment.refundable <= 0:
            return None
        refund = _reserve(uow, payment, None, reason, kick)
        uow.commit()
    return refund


def _reserve(
    uow: PaymentsUnitOfWork, payment: Payment, amount: Money | None, reason: str, kick: Callable[[str], None] | None
) -> Refund:
    """Reserve the refund on the locked payment and open its saga, in the caller's transaction."""
    refund = payment.request_refund(amount, reason, utcnow())
    uow.payments.save(payment)
    uow.payments.add_refund(refund)
    saga_id = uow.sagas.start(REFUND_SAGA, refund.id, "refund", {"payment_id": payment.id})
    if kick is not None and saga_id is not None:
        uow.after_commit(lambda: kick(saga_id))  # at once, not at the next sweep
    return refund


def refund_state(*, uow: PaymentsUnitOfWork, refund_id: str) -> RefundStatus:
    """Where a refund stands."""
    with uow:
        refund = uow.payments.refund(refund_id)
    if refund is None:
        raise PaymentNotFound(f"No refund {refund_id}.")
    return refund.status


def carry_out_refund(
    *, uow: UnitOfWorkFactory, provider: PaymentProvider, refund_id: str, moved: MoneyMoved = _unheard
) -> Refund:
    """Ask the provider for a pending refund and record its answer (`moved` hears of a refund paid,
    once committed); ProviderUnavailable propagates."""
    with uow() as work:
        refund = work.payments.refund(refund_id)
        if refund is None:
            raise PaymentNotFound(f"No refund {refund_id}.")
        if refund.status is not RefundStatus.PENDING:
            return refund
        payment = _locked(work, refund.payment_id)
    result = provider.refund(
        idempotency_key=f"refund-{refund.id}",
        charge_reference=payment.provider_reference or "",
        amount=refund.amount,
        currency=payment.amount.currency,
    )
    with uow() as work:
        payment = _locked(work, refund.payment_id)
        current = work.payments.refund(refund_id)
        assert current is not None
        if current.status is RefundStatus.PENDING:
            payment.settle_refund(
                current,
                succeeded=result.succeeded,
                reference=result.reference,
                failure=result.failure_code,
                now=utcnow(),
            )
            work.payments.save(payment)
            work.payments.save_refund(current)
            if result.succeeded:
                work.events.add(payment_event(payment, "refunded", work.payments.refunds_of(payment.id)))
                paid = current
                work.after_commit(lambda: moved("refunded", paid.amount, paid.currency))
            work.commit()
    return current


def get_payment(*, uow: PaymentsUnitOfWork, organization_id: str, payment_id: str) -> PaymentOverview:
    """The payment, with its refunds and where its saga stands."""
    with uow:
        payment = uow.payments.get(payment_id, organization_id=organization_id)
        if payment is None:
            raise PaymentNotFound("No such payment.")
        return _shown(uow, payment)


def list_payments(
    *, uow: PaymentsUnitOfWork, organization_id: str, booking_id: str | None, page: PageRequest
) -> Page[PaymentOverview]:
    """The organization's payments, each with its refunds and saga, newest first."""
    with uow:
        found = uow.payments.page(organization_id, booking_id, page)
        return Page([_shown(uow, payment) for payment in found.items], found.has_more)


def _shown(uow: PaymentsUnitOfWork, payment: Payment) -> PaymentOverview:
    return PaymentOverview(payment, uow.payments.refunds_of(payment.id), uow.payments.saga_state(payment.booking_id))


def _locked(uow: PaymentsUnitOfWork, payment_id: str, organization_id: str | None = None) -> Payment:
    payment = uow.payments.get(payment_id, organization_id=organization_id, lock=True)
    if payment is None:
        raise PaymentNotFound("No such payment.")
    return payment
