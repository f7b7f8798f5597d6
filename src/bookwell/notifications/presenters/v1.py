"""Notifications' objects in the shapes of API v1 (`src/bookwell/contract/openapi/v1.yaml`)."""

from __future__ import annotations

from typing import Any

from bookwell.notifications.domain import Attempt
from bookwell.notifications.domain import Delivery
from bookwell.notifications.domain import Endpoint
from bookwell.platform.kernel.clock import rfc3339


def endpoint(found: Endpoint) -> dict[str, Any]:
    """`WebhookEndpoint` (no secret: `WebhookEndpointWithSecret` adds it to the answers that show it)."""
    return {
        "id": found.id,
        "url": found.url,
        "event_types": list(found.event_types),
        "description": found.description,
        "active": found.active,
        "disabled_reason": None if found.disabled_reason is None else str(found.disabled_reason),
        "created_at": rfc3339(found.created_at),
        "updated_at": rfc3339(found.updated_at),
    }


def delivery(found: Delivery) -> dict[str, Any]:
    """`WebhookDelivery`."""
    return {
        "id": found.id,
        "endpoint_id": found.endpoint_id,
        "event_id": found.event_id,
        "event_type": found.event_type,
        "status": str(found.status),
        "attempts": found.attempts,
        "next_attempt_at": None if found.next_attempt_at is None else rfc3339(found.next_attempt_at),
        "last_status_code": found.last_status_code,
        "created_at": rfc3339(found.created_at),
        "updated_at": rfc3339(found.updated_at),
    }


def delivery_with_attempts(found: Delivery) -> dict[str, Any]:
    """`WebhookDeliveryWithAttempts`."""
    return delivery(found) | {"attempt_log": [attempt(a) for a in found.attempt_log]}


def attempt(found: Attempt) -> dict[str, Any]:
    """`WebhookAttempt`."""
    return {
        "number": found.number,
        "started_at": rfc3339(found.started_at),
        "status_code": found.status_code,
        "latency_ms": found.latency_ms,
        "error": found.error,
        "response_body": found.response_body,
    }
