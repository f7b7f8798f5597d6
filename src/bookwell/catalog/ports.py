"""What the catalog service needs from the outside world."""

from __future__ import annotations

from typing import Protocol

from bookwell.catalog.domain import Resource
from bookwell.platform.kernel.events import EventRecorder
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.kernel.uow import UnitOfWork


class ResourceRepository(Protocol):
    def add(self, resource: Resource) -> None: ...

    def get(self, organization_id: str, resource_id: str) -> Resource | None:
        """The resource, unless it belongs to another organization or was deleted."""
        ...

    def list(self, organization_id: str, page: PageRequest, *, active: bool | None) -> Page[Resource]: ...

    def save(self, resource: Resource, *, previous_version: int) -> bool:
        """Write the resource if its stored version is still `previous_version`; False if it moved on."""
        ...


class CatalogUnitOfWork(UnitOfWork, Protocol):
    @property
    def resources(self) -> ResourceRepository: ...

    @property
    def events(self) -> EventRecorder: ...
