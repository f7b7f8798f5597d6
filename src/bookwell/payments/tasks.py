"""The refund saga: one step, asking the provider until it answers; every refund is carried out by one.

Opened with the refund (`service.request_refund`), in the same transaction, whoever asked: the API,
a cancellation, or the booking saga's compensation.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from bookwell.payments import service
from bookwell.payments.domain import RefundStatus
from bookwell.payments.ports import PaymentProvider
from bookwell.payments.ports import PaymentsUnitOfWork
from bookwell.payments.ports import ProviderUnavailable
from bookwell.platform.db import Database
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.observability.metrics import observe_money
from bookwell.platform.workflow.saga import Retry
from bookwell.platform.workflow.saga import Saga
from bookwell.platform.workflow.saga import SagaLog
from bookwell.platform.workflow.saga import Sagas

log = structlog.get_logger("bookwell.payments.refunds")


def register(
    sagas: Sagas, *, database: Database, uow: Callable[[], PaymentsUnitOfWork], provider: PaymentProvider
) -> None:
    """Define the refund saga's step."""

    def refund(saga: Saga, record: SagaLog) -> None:
        try:
            done = service.carry_out_refund(uow=uow, provider=provider, refund_id=saga.subject_id, moved=observe_money)
        except ProviderUnavailable as unavailable:
            raise Retry(unavailable.reason, not_before_s=unavailable.retry_after_s) from unavailable
        succeeded = done.status is RefundStatus.SUCCEEDED
        if not succeeded:  # the provider refused: money that should go back did not; an operator must look
            log.error("refund_failed", refund_id=done.id, payment_id=done.payment_id, failure_code=done.failure_code)
        with SqlUnitOfWork(database, shared=True) as work:
            record.step(
                work,
                "succeeded" if succeeded else "failed",
                next_step=None,
                detail={"failure_code": done.failure_code, "provider_reference": done.provider_reference},
            )
            work.commit()

    sagas.define(service.REFUND_SAGA, "refund", refund)
