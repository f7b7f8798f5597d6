"""What the payments service needs from the outside: storage, and a payment provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Protocol

from bookwell.payments.domain import Payment
from bookwell.payments.domain import Refund
from bookwell.platform.kernel.events import EventRecorder
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.kernel.uow import UnitOfWork


@dataclass(frozen=True)
class ChargeResult:
    """The provider's final answer to a charge: captured, or declined with a reason."""

    captured: bool
    reference: str | None  # the provider's id of the charge (a declined charge may have one too)
    failure_code: str | None = None  # e.g. "card_declined"; None when captured


@dataclass(frozen=True)
class RefundResult:
    """The provider's final answer to a refund."""

    succeeded: bool
    reference: str | None
    failure_code: str | None = None


class ProviderUnavailable(Exception):
    """No final answer: a timeout, a 5xx, a refused connection, or the circuit breaker is open.

    The outcome is unknown (the provider may have acted): ask again later with the same
    idempotency key, which the provider answers with the first outcome, never a second charge.
    `maybe_acted` is False only when no request can have reached the provider (the breaker was
    open, the connection was refused): then nothing needs finding out.
    """

    def __init__(self, reason: str, *, retry_after_s: float | None = None, maybe_acted: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.maybe_acted = maybe_acted


class PaymentProvider(Protocol):
    """A card processor. Every call carries an idempotency key derived from our own id."""

    name: str

    def charge(self, *, idempotency_key: str, amount: int, currency: str, token: str) -> ChargeResult:
        """Capture `amount` (minor units) from the card behind `token`; raises ProviderUnavailable."""
        ...

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int, currency: str) -> RefundResult:
        """Give back `amount` of a captured charge; raises ProviderUnavailable."""
        ...


class PaymentRepository(Protocol):
    def add(self, payment: Payment) -> None: ...

    def get(self, payment_id: str, *, organization_id: str | None = None, lock: bool = False) -> Payment | None:
        """With `lock`, the payment's row is held until the transaction ends."""
        ...

    def for_booking(self, booking_id: str, *, lock: bool = False) -> Payment | None: ...

    def page(self, organization_id: str, booking_id: str | None, page: PageRequest) -> Page[Payment]: ...

    def save(self, payment: Payment) -> None: ...

    def saga_state(self, booking_id: str) -> dict[str, Any] | None:
        """Where the saga charging the booking stands, as the Payment representation shows it."""
        ...

    def refunds_of(self, payment_id: str) -> list[Refund]: ...

    def refund(self, refund_id: str) -> Refund | None: ...

    def add_refund(self, refund: Refund) -> None: ...

    def save_refund(self, refund: Refund) -> None: ...


class SagaStarter(Protocol):
    def start(self, saga_type: str, subject_id: str, step: str, data: dict[str, Any] | None = None) -> str | None:
        """Open a saga in this transaction (None if the subject has one)."""
        ...


class PaymentsUnitOfWork(UnitOfWork, Protocol):
    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def events(self) -> EventRecorder: ...

    @property
    def sagas(self) -> SagaStarter: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...
