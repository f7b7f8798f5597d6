"""Catalog use cases: one function per command or query, each owning its transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bookwell.catalog.domain import Resource
from bookwell.catalog.domain import ResourceNotFound
from bookwell.catalog.domain import StaleResource
from bookwell.catalog.domain import create_resource as new_resource
from bookwell.catalog.events import resource_event
from bookwell.catalog.ports import CatalogUnitOfWork
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest


def create_resource(*, uow: CatalogUnitOfWork, organization_id: str, fields: Mapping[str, Any]) -> Resource:
    """Publish a resource; `resource.created` commits with it."""
    resource = new_resource(organization_id=organization_id, fields=fields, now=utcnow())
    with uow:
        uow.resources.add(resource)
        uow.events.add(resource_event(resource, "created"))
        uow.commit()
    return resource


def get_resource(*, uow: CatalogUnitOfWork, organization_id: str, resource_id: str) -> Resource:
    """One live resource of the organization."""
    with uow:
        resource = uow.resources.get(organization_id, resource_id)
    if resource is None:
        raise ResourceNotFound("No such resource.")
    return resource


def list_resources(
    *,
    uow: CatalogUnitOfWork,
    organization_id: str,
    page: PageRequest,
    active: bool | None,
) -> Page[Resource]:
    """The organization's live resources, newest first."""
    with uow:
        return uow.resources.list(organization_id, page, active=active)


def update_resource(
    *,
    uow: CatalogUnitOfWork,
    organization_id: str,
    resource_id: str,
    accepted_versions: frozenset[int] | None,
    changes: Mapping[str, Any],
) -> Resource:
    """Change a resource if the caller holds its current version; `resource.updated` commits with it."""
    with uow:
        resource = _current(uow, organization_id, resource_id, accepted_versions)
        previous = resource.version
        resource.update(changes, utcnow())
        _save(uow, resource, previous)
        uow.events.add(resource_event(resource, "updated"))
        uow.commit()
    return resource


def delete_resource(
    *,
    uow: CatalogUnitOfWork,
    organization_id: str,
    resource_id: str,
    accepted_versions: frozenset[int] | None,
) -> None:
    """Soft-delete a resource if the caller holds its current version; `resource.deleted` commits with it."""
    with uow:
        resource = _current(uow, organization_id, resource_id, accepted_versions)
        previous = resource.version
        resource.delete(utcnow())
        _save(uow, resource, previous)
        uow.events.add(resource_event(resource, "deleted"))
        uow.commit()


def _current(
    uow: CatalogUnitOfWork,
    organization_id: str,
    resource_id: str,
    accepted_versions: frozenset[int] | None,
) -> Resource:
    resource = uow.resources.get(organization_id, resource_id)
    if resource is None:
        raise ResourceNotFound("No such resource.")
    resource.check_version(accepted_versions)
    return resource


def _save(uow: CatalogUnitOfWork, resource: Resource, previous_version: int) -> None:
    # The version check above read the row; another writer may have changed it since.
    # The conditional UPDATE is the check that cannot race.
    if not uow.resources.save(resource, previous_version=previous_version):
        raise StaleResource("The resource changed while this request was being handled.")
