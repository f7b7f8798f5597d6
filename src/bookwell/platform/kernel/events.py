"""Integration events: what a context tells the world happened, recorded in the outbox with the change."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol

from bookwell.platform.kernel.ids import new_id


@dataclass(frozen=True)
class Event:
    """A past-tense fact with a dotted type (`resource.created`) and the object as it now stands."""

    type: str
    organization_id: str
    aggregate_id: str
    object: dict[str, Any]
    id: str = field(default_factory=lambda: new_id("evt"))


class EventRecorder(Protocol):
    """Records events in the current transaction; they leave only if it commits."""

    def add(self, event: Event) -> None:
        """Record one event."""
