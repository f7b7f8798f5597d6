"""The catalog's events, in event schema v1 (`contract/events/v1.yaml`): the resource as API v1 shows it."""

from __future__ import annotations

from bookwell.catalog.domain import Resource
from bookwell.catalog.presenters import v1
from bookwell.platform.kernel.events import Event


def resource_event(resource: Resource, kind: str) -> Event:
    """`resource.<kind>`, carrying the resource as it now stands."""
    return Event(
        type=f"resource.{kind}",
        organization_id=resource.organization_id,
        aggregate_id=resource.id,
        object=v1.resource(resource),
    )
