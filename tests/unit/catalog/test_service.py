"""Catalog use cases on an in-memory unit of work."""

from __future__ import annotations

import pytest

from bookwell.catalog import service
from bookwell.catalog.domain import ResourceNotFound
from bookwell.catalog.domain import StaleResource
from bookwell.platform.kernel.errors import InvalidInput
from bookwell.platform.kernel.pages import PageRequest
from tests.unit.fakes import FakeCatalogUnitOfWork

ORG = "org_01AAAAAAAAAAAAAAAAAAAAAAAA"
FIELDS = {
    "name": "Room A",
    "timezone": "Europe/Lisbon",
    "slot_minutes": 60,
    "opening_hours": {"monday": [["09:00", "17:00"]]},
    "price_per_slot": {"amount": 0, "currency": "EUR"},
}


def test_create_commits_the_resource_and_its_event_together() -> None:
    uow = FakeCatalogUnitOfWork()
    resource = service.create_resource(uow=uow, organization_id=ORG, fields=FIELDS)
    assert uow.commits == 1
    assert service.get_resource(uow=uow, organization_id=ORG, resource_id=resource.id).name == "Room A"
    [event] = uow.events.recorded
    assert (event.type, event.aggregate_id, event.object["id"]) == ("resource.created", resource.id, resource.id)


def test_invalid_fields_leave_nothing_behind() -> None:
    uow = FakeCatalogUnitOfWork()
    with pytest.raises(InvalidInput):
        service.create_resource(uow=uow, organization_id=ORG, fields=FIELDS | {"timezone": "Nowhere/Land"})
    assert uow.commits == 0
    assert uow.events.recorded == []


def test_update_checks_the_version_and_records_an_event() -> None:
    uow = FakeCatalogUnitOfWork()
    resource = service.create_resource(uow=uow, organization_id=ORG, fields=FIELDS)
    with pytest.raises(StaleResource):
        service.update_resource(
            uow=uow, organization_id=ORG, resource_id=resource.id, accepted_versions=frozenset({7}), changes={}
        )
    updated = service.update_resource(
        uow=uow,
        organization_id=ORG,
        resource_id=resource.id,
        accepted_versions=frozenset({1}),
        changes={"capacity": 4},
    )
    assert (updated.version, updated.capacity) == (2, 4)
    assert [e.type for e in uow.events.recorded] == ["resource.created", "resource.updated"]


def test_a_rule_broken_by_an_update_rolls_the_whole_change_back() -> None:
    uow = FakeCatalogUnitOfWork()
    resource = service.create_resource(uow=uow, organization_id=ORG, fields=FIELDS)
    with pytest.raises(InvalidInput):
        service.update_resource(
            uow=uow,
            organization_id=ORG,
            resource_id=resource.id,
            accepted_versions=None,
            changes={"capacity": 5, "slot_minutes": 7},
        )
    stored = service.get_resource(uow=uow, organization_id=ORG, resource_id=resource.id)
    assert (stored.capacity, stored.slot_minutes, stored.version) == (1, 60, 1)


def test_a_concurrent_writer_between_read_and_write_is_a_precondition_failure() -> None:
    uow = FakeCatalogUnitOfWork()
    resource = service.create_resource(uow=uow, organization_id=ORG, fields=FIELDS)
    read_before_the_other_write = uow.resources.get(ORG, resource.id)
    uow.state["resources"][resource.id].version = 2  # another request commits its change now
    uow.resources.get = lambda *_: read_before_the_other_write  # type: ignore[method-assign]
    with pytest.raises(StaleResource):
        service.update_resource(
            uow=uow, organization_id=ORG, resource_id=resource.id, accepted_versions=None, changes={"capacity": 2}
        )


def test_delete_hides_the_resource_from_reads_and_lists() -> None:
    uow = FakeCatalogUnitOfWork()
    resource = service.create_resource(uow=uow, organization_id=ORG, fields=FIELDS)
    service.delete_resource(uow=uow, organization_id=ORG, resource_id=resource.id, accepted_versions=frozenset({1}))
    with pytest.raises(ResourceNotFound):
        service.get_resource(uow=uow, organization_id=ORG, resource_id=resource.id)
    assert service.list_resources(uow=uow, organization_id=ORG, page=PageRequest(10), active=None).items == []
    assert uow.events.recorded[-1].type == "resource.deleted"


def test_another_organization_sees_nothing() -> None:
    uow = FakeCatalogUnitOfWork()
    resource = service.create_resource(uow=uow, organization_id=ORG, fields=FIELDS)
    with pytest.raises(ResourceNotFound):
        service.get_resource(uow=uow, organization_id="org_01BBBBBBBBBBBBBBBBBBBBBBBB", resource_id=resource.id)
