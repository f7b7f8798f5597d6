"""Booking's objects in the shapes of API v1 (`src/bookwell/contract/openapi/v1.yaml`)."""

from __future__ import annotations

from typing import Any

from bookwell.booking.domain import Booking
from bookwell.booking.domain import Slot
from bookwell.platform.kernel.clock import rfc3339


def booking(found: Booking) -> dict[str, Any]:
    """`Booking` (without `saga`, which `getBooking` adds)."""
    return {
        "id": found.id,
        "resource_id": found.resource_id,
        "start": rfc3339(found.start),
        "end": rfc3339(found.end),
        "quantity": found.quantity,
        "customer": {"name": found.customer_name, "email": found.customer_email},
        "status": str(found.status),
        "hold_expires_at": rfc3339(found.hold_expires_at) if found.hold_expires_at else None,
        "price": found.price.as_dict(),
        "metadata": dict(found.metadata),
        "cancellation_reason": found.cancellation_reason,
        "created_at": rfc3339(found.created_at),
        "updated_at": rfc3339(found.updated_at),
    }


def slot(found: Slot) -> dict[str, Any]:
    """One slot of `Availability`."""
    return {"start": rfc3339(found.start), "end": rfc3339(found.end), "remaining": found.remaining}
