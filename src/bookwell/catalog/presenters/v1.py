"""The catalog's objects in the shapes of API v1 (`src/bookwell/contract/openapi/v1.yaml`)."""

from __future__ import annotations

from typing import Any

from bookwell.catalog.domain import Resource
from bookwell.platform.kernel.clock import rfc3339


def resource(found: Resource) -> dict[str, Any]:
    """`Resource`."""
    return {
        "id": found.id,
        "name": found.name,
        "description": found.description,
        "timezone": found.timezone,
        "capacity": found.capacity,
        "slot_minutes": found.slot_minutes,
        "min_slots": found.min_slots,
        "max_slots": found.max_slots,
        "opening_hours": found.opening_hours.as_dict(),
        "price_per_slot": found.price_per_slot.as_dict(),
        "hold_minutes": found.hold_minutes,
        "cancellation": {"refund_until_hours_before": found.cancellation.refund_until_hours_before},
        "active": found.active,
        "created_at": rfc3339(found.created_at),
        "updated_at": rfc3339(found.updated_at),
    }
