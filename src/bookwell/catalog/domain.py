"""Resources: what can be booked, when it is open, what a slot costs. Every rule about them lives here."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import InvalidInput
from bookwell.platform.kernel.errors import NotFound
from bookwell.platform.kernel.errors import PreconditionFailed
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.kernel.money import ISO_4217
from bookwell.platform.kernel.money import Money

WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
MINUTES_PER_DAY = 1440
DEFAULTS: Mapping[str, Any] = {
    "description": None,
    "capacity": 1,
    "min_slots": 1,
    "max_slots": 1,
    "hold_minutes": 10,
    "cancellation": {"refund_until_hours_before": 24},
    "active": True,
}
NULLABLE = frozenset({"description"})


class ResourceNotFound(NotFound):
    code = "resource_not_found"


class StaleResource(PreconditionFailed):
    """The caller's If-Match names a version that is no longer current."""


@functools.cache
def _timezones() -> frozenset[str]:
    # The pinned tzdata package's list, not the host's zoneinfo folder (which also holds
    # names such as "localtime" that mean something different on every machine).
    return frozenset(importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class OpeningHours:
    """Local opening intervals per weekday, in minutes after midnight; `24:00` ends a day."""

    days: Mapping[str, tuple[tuple[int, int], ...]]

    @classmethod
    def parse(cls, raw: Mapping[str, Sequence[Sequence[str]] | None], slot_minutes: int) -> OpeningHours:
        """Read `{"monday": [["09:00","17:00"]]}`; intervals must be ordered, disjoint and on slot boundaries."""
        errors: list[FieldError] = []
        days: dict[str, tuple[tuple[int, int], ...]] = {}
        for day, intervals in raw.items():
            if intervals is None:
                errors.append(FieldError(f"/opening_hours/{day}", "must be a list of intervals, not null"))
                continue
            days[day] = cls._parse_day(day, intervals, slot_minutes, errors)
        if errors:
            raise InvalidInput("The opening hours are not valid.", errors=tuple(errors))
        return cls(days={day: days[day] for day in WEEKDAYS if days.get(day)})

    @staticmethod
    def _parse_day(
        day: str,
        intervals: Sequence[Sequence[str]],
        slot_minutes: int,
        errors: list[FieldError],
    ) -> tuple[tuple[int, int], ...]:
        parsed: list[tuple[int, int]] = []
        for index, (start_text, end_text) in enumerate(intervals):
            pointer = f"/opening_hours/{day}/{index}"
            start, end = _minutes(start_text), _minutes(end_text)
            if start >= end:
                errors.append(FieldError(pointer, "the interval must end after it starts"))
            elif start % slot_minutes or end % slot_minutes:
                errors.append(
                    FieldError(
                        pointer,
                        f"the interval must fall on {slot_minutes}-minute slot boundaries",
                    )
                )
            elif parsed and start < parsed[-1][1]:
                errors.append(FieldError(pointer, "intervals must be in order and must not overlap"))
            else:
                parsed.append((start, end))
        return tuple(parsed)

    def as_dict(self) -> dict[str, list[list[str]]]:
        """The public JSON shape; closed days are left out."""
        return {day: [[_hhmm(s), _hhmm(e)] for s, e in intervals] for day, intervals in self.days.items()}


@dataclass(frozen=True)
class CancellationPolicy:
    """Until how many hours before the start a cancellation is refunded."""

    refund_until_hours_before: int


@dataclass
class Resource:
    """A bookable thing of one organization."""

    id: str
    organization_id: str
    name: str
    description: str | None
    timezone: str
    capacity: int
    slot_minutes: int
    min_slots: int
    max_slots: int
    opening_hours: OpeningHours
    price_per_slot: Money
    hold_minutes: int
    cancellation: CancellationPolicy
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    def check_version(self, accepted: frozenset[int] | None) -> None:
        """Raise unless the caller's If-Match names the current version (None accepts any)."""
        if accepted is not None and self.version not in accepted:
            raise StaleResource(f'The resource has changed; its current ETag is "v{self.version}".')

    def update(self, changes: Mapping[str, Any], now: datetime) -> None:
        """Apply a partial change; every rule is checked on the result before anything changes."""
        merged = _fields(self) | dict(changes)
        checked = _validated(merged)
        for name, value in checked.items():
            setattr(self, name, value)
        self.version += 1
        self.updated_at = now

    def delete(self, now: datetime) -> None:
        """Soft-delete: the resource answers 404 from now on."""
        self.deleted_at = now
        self.version += 1
        self.updated_at = now


_EDITABLE = (
    "name",
    "description",
    "timezone",
    "capacity",
    "slot_minutes",
    "min_slots",
    "max_slots",
    "opening_hours",
    "price_per_slot",
    "hold_minutes",
    "cancellation",
    "active",
)


def _fields(resource: Resource) -> dict[str, Any]:
    """The editable fields in the raw shape a create gives them, so merged changes are validated uniformly."""
    return {
        "name": resource.name,
        "description": resource.description,
        "timezone": resource.timezone,
        "capacity": resource.capacity,
        "slot_minutes": resource.slot_minutes,
        "min_slots": resource.min_slots,
        "max_slots": resource.max_slots,
        "opening_hours": resource.opening_hours.as_dict(),
        "price_per_slot": resource.price_per_slot.as_dict(),
        "hold_minutes": resource.hold_minutes,
        "cancellation": {"refund_until_hours_before": resource.cancellation.refund_until_hours_before},
        "active": resource.active,
    }


def _validated(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Domain values for raw fields, or InvalidInput naming every offending field."""
    errors = [
        FieldError(f"/{name}", "must not be null")
        for name in _EDITABLE
        if raw.get(name) is None and name not in NULLABLE
    ]
    if errors:
        raise InvalidInput("Some fields must not be null.", errors=tuple(errors))
    name = raw["name"].strip()
    if not name:
        errors.append(FieldError("/name", "must not be blank"))
    if raw["timezone"] not in _timezones():
        errors.append(FieldError("/timezone", "must be an IANA time zone such as Europe/Berlin"))
    slot_minutes = raw["slot_minutes"]
    if MINUTES_PER_DAY % slot_minutes:
        errors.append(FieldError("/slot_minutes", "must divide a day (1440 minutes) evenly"))
    if raw["min_slots"] > raw["max_slots"]:
        errors.append(FieldError("/max_slots", "must be at least min_slots"))
    price = raw["price_per_slot"]
    if price["currency"] not in ISO_4217:
        errors.append(FieldError("/price_per_slot/currency", "must be an active ISO 4217 currency code"))
    if errors:
        raise InvalidInput("The resource is not valid.", errors=tuple(errors))
    return {
        "name": name,
        "description": raw["description"],
        "timezone": raw["timezone"],
        "capacity": raw["capacity"],
        "slot_minutes": slot_minutes,
        "min_slots": raw["min_slots"],
        "max_slots": raw["max_slots"],
        "opening_hours": OpeningHours.parse(raw["opening_hours"], slot_minutes),
        "price_per_slot": Money(amount=price["amount"], currency=price["currency"]),
        "hold_minutes": raw["hold_minutes"],
        "cancellation": CancellationPolicy(raw["cancellation"]["refund_until_hours_before"]),
        "active": raw["active"],
    }


def create_resource(*, organization_id: str, fields: Mapping[str, Any], now: datetime) -> Resource:
    """A new resource from the fields a caller gave; unspecified ones take their defaults."""
    checked = _validated(dict(DEFAULTS) | dict(fields))
    return Resource(
        id=new_id("res"),
        organization_id=organization_id,
        version=1,
        created_at=now,
        updated_at=now,
        **checked,
    )
