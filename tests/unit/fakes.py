"""In-memory units of work: services run on these in unit tests, with no I/O.

Like the SQL unit of work, a fake keeps what happened inside `with` only if `commit()` ran.
"""

from __future__ import annotations

import copy
from types import TracebackType
from typing import Any
from typing import Self
from typing import TypeVar

from bookwell.catalog.domain import Resource
from bookwell.identity.domain import ApiKey
from bookwell.identity.domain import Organization
from bookwell.platform.kernel.events import Event
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest

T = TypeVar("T")


def keyset_page(items: list[T], page: PageRequest) -> Page[T]:
    ordered = sorted(items, key=lambda item: item.id, reverse=True)  # type: ignore[attr-defined]
    if page.after is not None:
        ordered = [item for item in ordered if item.id < page.after]  # type: ignore[attr-defined]
    return Page.from_overfetch(ordered[: page.limit + 1], page)


class FakeUnitOfWork:
    """Snapshots `self.state` on entry and puts it back on exit unless committed."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.commits = 0
        self._saved: dict[str, Any] | None = None

    def __enter__(self) -> Self:
        self._saved = copy.deepcopy(self.state)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._saved is not None:
            self.state = self._saved
        self._saved = None

    def commit(self) -> None:
        self.commits += 1
        self._saved = None


class _Table:
    """A repository's rows, read through the unit of work so a rollback is seen at once."""

    name = ""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow
        uow.state.setdefault(self.name, {})

    @property
    def _rows(self) -> dict[str, Any]:
        rows: dict[str, Any] = self._uow.state[self.name]
        return rows


class FakeEvents(_Table):
    name = "events"

    def add(self, event: Event) -> None:
        self._rows[event.id] = event

    @property
    def recorded(self) -> list[Event]:
        return list(self._rows.values())


class FakeResources(_Table):
    name = "resources"

    def add(self, resource: Resource) -> None:
        self._rows[resource.id] = copy.deepcopy(resource)

    def get(self, organization_id: str, resource_id: str) -> Resource | None:
        row = self._rows.get(resource_id)
        if row is None or row.organization_id != organization_id or row.deleted_at is not None:
            return None
        return copy.deepcopy(row)

    def list(self, organization_id: str, page: PageRequest, *, active: bool | None) -> Page[Resource]:
        rows = [
            copy.deepcopy(r)
            for r in self._rows.values()
            if r.organization_id == organization_id and r.deleted_at is None and active in (None, r.active)
        ]
        return keyset_page(rows, page)

    def save(self, resource: Resource, *, previous_version: int) -> bool:
        if self._rows[resource.id].version != previous_version:
            return False
        self._rows[resource.id] = copy.deepcopy(resource)
        return True


class FakeCatalogUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.resources = FakeResources(self)
        self.events = FakeEvents(self)


class FakeOrganizations(_Table):
    name = "organizations"
    locked: tuple[str, ...] = ()

    def add(self, organization: Organization) -> None:
        self._rows[organization.id] = copy.deepcopy(organization)

    def get(self, organization_id: str) -> Organization | None:
        return copy.deepcopy(self._rows.get(organization_id))

    def lock(self, organization_id: str) -> None:
        self.locked = (*self.locked, organization_id)


class FakeApiKeys(_Table):
    name = "api_keys"

    def add(self, key: ApiKey) -> None:
        self._rows[key.id] = copy.deepcopy(key)

    def get(self, organization_id: str, key_id: str) -> ApiKey | None:
        row = self._rows.get(key_id)
        return copy.deepcopy(row) if row is not None and row.organization_id == organization_id else None

    def by_prefix(self, prefix: str) -> ApiKey | None:
        return next((copy.deepcopy(k) for k in self._rows.values() if k.prefix == prefix), None)

    def list(self, organization_id: str, page: PageRequest) -> Page[ApiKey]:
        return keyset_page(
            [copy.deepcopy(k) for k in self._rows.values() if k.organization_id == organization_id], page
        )

    def count_active_with_scope(self, organization_id: str, scope: str) -> int:
        return sum(
            1 for k in self._rows.values() if k.organization_id == organization_id and k.active and scope in k.scopes
        )

    def save_usage(self, key: ApiKey) -> None:
        stored = self._rows[key.id]
        stored.last_used_at, stored.revoked_at = key.last_used_at, key.revoked_at


class FakeIdentityUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.organizations = FakeOrganizations(self)
        self.api_keys = FakeApiKeys(self)
