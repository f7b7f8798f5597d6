"""Resource rules: opening hours, slot sizes, money, time zones."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from bookwell.catalog.domain import OpeningHours
from bookwell.catalog.domain import create_resource
from bookwell.catalog.presenters import v1
from bookwell.platform.kernel.errors import InvalidInput

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FIELDS = {
    "name": "Desk 7",
    "timezone": "America/New_York",
    "slot_minutes": 15,
    "opening_hours": {"friday": [["07:00", "12:00"], ["12:00", "24:00"]]},
    "price_per_slot": {"amount": 300, "currency": "USD"},
}


def pointers(error: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [e.pointer for e in error.value.errors]


def test_opening_hours_keep_order_drop_closed_days_and_allow_midnight_end() -> None:
    hours = OpeningHours.parse({"sunday": [], "monday": [["22:00", "24:00"]], "friday": [["00:00", "01:00"]]}, 60)
    assert hours.days == {"monday": ((1320, 1440),), "friday": ((0, 60),)}
    assert hours.as_dict() == {"monday": [["22:00", "24:00"]], "friday": [["00:00", "01:00"]]}


def test_touching_intervals_are_allowed_overlapping_ones_are_not() -> None:
    assert OpeningHours.parse({"friday": [["07:00", "12:00"], ["12:00", "13:00"]]}, 60).days["friday"][1] == (720, 780)
    with pytest.raises(InvalidInput) as error:
        OpeningHours.parse({"friday": [["07:00", "12:00"], ["11:00", "13:00"]]}, 60)
    assert pointers(error) == ["/opening_hours/friday/1"]


def test_every_broken_rule_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as error:
        OpeningHours.parse({"monday": [["10:00", "09:00"]], "tuesday": [["09:10", "10:00"]]}, 15)
    assert pointers(error) == ["/opening_hours/monday/0", "/opening_hours/tuesday/0"]


def test_defaults_and_money() -> None:
    resource = create_resource(organization_id="org_x", fields=FIELDS, now=NOW)
    assert (resource.capacity, resource.hold_minutes, resource.version, resource.active) == (1, 10, 1, True)
    assert resource.price_per_slot.amount == 300
    assert v1.resource(resource)["opening_hours"] == FIELDS["opening_hours"]


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"timezone": "EST5EDT "}, "/timezone"),
        ({"timezone": "localtime"}, "/timezone"),
        ({"slot_minutes": 25}, "/slot_minutes"),
        ({"min_slots": 5, "max_slots": 4}, "/max_slots"),
        ({"price_per_slot": {"amount": 1, "currency": "usd"}}, "/price_per_slot/currency"),
        ({"name": ""}, "/name"),
        ({"capacity": None}, "/capacity"),
    ],
)
def test_rules(changes: dict[str, object], pointer: str) -> None:
    with pytest.raises(InvalidInput) as error:
        create_resource(organization_id="org_x", fields=FIELDS | changes, now=NOW)
    assert pointer in pointers(error)


def test_update_is_all_or_nothing() -> None:
    resource = create_resource(organization_id="org_x", fields=FIELDS, now=NOW)
    with pytest.raises(InvalidInput):
        resource.update({"capacity": 9, "timezone": "Bad/Zone"}, NOW)
    assert (resource.capacity, resource.timezone, resource.version) == (1, "America/New_York", 1)
    resource.update({"capacity": 9, "description": None}, NOW)
    assert (resource.capacity, resource.version) == (9, 2)
