"""Payments' tables and repository on SQLAlchemy Core; rows are translated to domain objects here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import select

from bookwell.payments.domain import CHARGING_SAGA
from bookwell.payments.domain import Payment
from bookwell.payments.domain import PaymentStatus
from bookwell.payments.domain import Refund
from bookwell.payments.domain import RefundStatus
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import fetch_page
from bookwell.platform.db import metadata
from bookwell.platform.kernel.money import Money
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.messaging.outbox import SqlOutbox
from bookwell.platform.workflow.saga import SqlSagaStarter
from bookwell.platform.workflow.saga import saga_of

payments = Table(
    "payments",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("organization_id", String(30), ForeignKey("organizations.id"), nullable=False),
    # One payment per booking: the second wall against charging a booking twice.
    Column("booking_id", String(30), ForeignKey("bookings.id"), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("token", String(255), nullable=False),
    Column("status", String(24), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("provider_reference", String(100)),
    Column("failure_code", String(64)),
    Column("attempts", Integer, nullable=False),
    Column("refund_reserved", BigInteger, nullable=False),
    Column("refunded_amount", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    # Never more given back, or promised back, than was captured.
    CheckConstraint("refunded_amount >= 0 AND refunded_amount <= refund_reserved", name="refunded_within_reserved"),
    CheckConstraint("refund_reserved <= amount", name="refunds_within_amount"),
    Index("ix_payments_organization_id_id", "organization_id", "id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("organization_id", String(30), ForeignKey("organizations.id"), nullable=False),
    Column("payment_id", String(30), ForeignKey("payments.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("provider_reference", String(100)),
    Column("failure_code", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    Index("ix_refunds_payment_id", "payment_id"),
)


def _payment(row: Any) -> Payment:
    return Payment(
        id=row.id,
        organization_id=row.organization_id,
        booking_id=row.booking_id,
        amount=Money(row.amount, row.currency),
        token=row.token,
        status=PaymentStatus(row.status),
        provider=row.provider,
        provider_reference=row.provider_reference,
        failure_code=row.failure_code,
        attempts=row.attempts,
        refund_reserved=row.refund_reserved,
        refunded_amount=row.refunded_amount,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# A refund is in its payment's currency: read with it.
_REFUNDS = select(refunds, payments.c.currency).join(payments, payments.c.id == refunds.c.payment_id)


def _refund(row: Any) -> Refund:
    return Refund(
        id=row.id,
        organization_id=row.organization_id,
        payment_id=row.payment_id,
        amount=row.amount,
        currency=row.currency,
        status=RefundStatus(row.status),
        reason=row.reason,
        provider_reference=row.provider_reference,
        failure_code=row.failure_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _changes(payment: Payment) -> dict[str, Any]:
    return {
        "status": payment.status.value,
        "provider_reference": payment.provider_reference,
        "failure_code": payment.failure_code,
        "attempts": payment.attempts,
        "refund_reserved": payment.refund_reserved,
        "refunded_amount": payment.refunded_amount,
        "version": payment.version,
        "updated_at": payment.updated_at,
    }


class SqlPaymentRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, payment: Payment) -> None:
        self._connection.execute(
            payments.insert().values(
                id=payment.id,
                organization_id=payment.organization_id,
                booking_id=payment.booking_id,
                amount=payment.amount.amount,
                currency=payment.amount.currency,
                token=payment.token,
                provider=payment.provider,
                created_at=payment.created_at,
                **_changes(payment),
            )
        )

    def get(self, payment_id: str, *, organization_id: str | None = None, lock: bool = False) -> Payment | None:
        query = select(payments).where(payments.c.id == payment_id)
        if organization_id is not None:
            query = query.where(payments.c.organization_id == organization_id)
        if lock:
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        return None if row is None else _payment(row)

    def for_booking(self, booking_id: str, *, lock: bool = False) -> Payment | None:
        query = select(payments).where(payments.c.booking_id == booking_id)
        if lock:
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        return None if row is None else _payment(row)

    def page(self, organization_id: str, booking_id: str | None, page: PageRequest) -> Page[Payment]:
        query = select(payments).where(payments.c.organization_id == organization_id)
        if booking_id is not None:
            query = query.where(payments.c.booking_id == booking_id)
        return fetch_page(self._connection, query, payments.c.id, page, _payment)

    def saga_state(self, booking_id: str) -> dict[str, Any] | None:
        """Where the saga charging the booking stands (see `platform.workflow.saga`)."""
        view = saga_of(self._connection, CHARGING_SAGA, booking_id)
        return None if view is None else view.as_dict()

    def save(self, payment: Payment) -> None:
        """Write the payment; the caller holds its row lock (or the SQLite writer lock)."""
        self._connection.execute(payments.update().where(payments.c.id == payment.id).values(**_changes(payment)))

    def refunds_of(self, payment_id: str) -> list[Refund]:
        query = _REFUNDS.where(refunds.c.payment_id == payment_id).order_by(refunds.c.id)
        return [_refund(row) for row in self._connection.execute(query)]

    def refund(self, refund_id: str) -> Refund | None:
        row = self._connection.execute(_REFUNDS.where(refunds.c.id == refund_id)).first()
        return None if row is None else _refund(row)

    def add_refund(self, refund: Refund) -> None:
        self._connection.execute(
            refunds.insert().values(
                id=refund.id,
                organization_id=refund.organization_id,
                payment_id=refund.payment_id,
                amount=refund.amount,
                status=refund.status.value,
                reason=refund.reason,
                created_at=refund.created_at,
                updated_at=refund.updated_at,
            )
        )

    def save_refund(self, refund: Refund) -> None:
        self._connection.execute(
            refunds.update()
            .where(refunds.c.id == refund.id)
            .values(
                status=refund.status.value,
                provider_reference=refund.provider_reference,
                failure_code=refund.failure_code,
                updated_at=refund.updated_at,
            )
        )


class SqlPaymentsUnitOfWork(SqlUnitOfWork):
    payments: SqlPaymentRepository
    events: SqlOutbox
    sagas: SqlSagaStarter

    def _open_repositories(self, connection: Connection) -> None:
        self.payments = SqlPaymentRepository(connection)
        self.events = SqlOutbox(connection)
        self.sagas = SqlSagaStarter(connection)
