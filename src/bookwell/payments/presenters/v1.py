"""Payments' objects in the shapes of API v1 (`src/bookwell/contract/openapi/v1.yaml`)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from bookwell.payments.domain import Payment
from bookwell.payments.domain import Refund
from bookwell.platform.kernel.clock import rfc3339
from bookwell.platform.kernel.money import Money


def payment(found: Payment, refunds: Sequence[Refund], saga: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`Payment`, with its refunds and where its booking's saga stands."""
    return {
        "id": found.id,
        "booking_id": found.booking_id,
        "amount": found.amount.as_dict(),
        "status": str(found.status),
        "provider": found.provider,
        "provider_reference": found.provider_reference,
        "failure_code": found.failure_code,
        "refunded_amount": Money(found.refunded_amount, found.amount.currency).as_dict(),
        "refunds": [refund(each) for each in refunds],
        "saga": None if saga is None else dict(saga),
        "created_at": rfc3339(found.created_at),
        "updated_at": rfc3339(found.updated_at),
    }


def refund(found: Refund) -> dict[str, Any]:
    """`Refund`."""
    return {
        "id": found.id,
        "payment_id": found.payment_id,
        "amount": Money(found.amount, found.currency).as_dict(),
        "status": str(found.status),
        "reason": found.reason,
        "provider_reference": found.provider_reference,
        "failure_code": found.failure_code,
        "created_at": rfc3339(found.created_at),
        "updated_at": rfc3339(found.updated_at),
    }
