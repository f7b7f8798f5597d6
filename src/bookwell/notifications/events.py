"""Notifications' events, in event schema v1 (`contract/events/v1.yaml`): the endpoint as API v1 shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bookwell.notifications.domain import TEST_EVENT
from bookwell.notifications.domain import Endpoint
from bookwell.notifications.presenters import v1
from bookwell.platform.kernel.clock import rfc3339
from bookwell.platform.kernel.events import Event


def endpoint_event(endpoint: Endpoint, kind: str) -> Event:
    """`webhook_endpoint.<kind>`, carrying the endpoint as it now stands (never a secret)."""
    return Event(
        type=f"webhook_endpoint.{kind}",
        organization_id=endpoint.organization_id,
        aggregate_id=endpoint.id,
        object=v1.endpoint(endpoint),
    )


def test_event(endpoint: Endpoint, event_id: str, now: datetime) -> dict[str, Any]:
    """`webhook.test` as the endpoint receives it: shaped like every event, never in the event log."""
    return {"id": event_id, "type": TEST_EVENT, "created_at": rfc3339(now), "data": {"object": v1.endpoint(endpoint)}}
