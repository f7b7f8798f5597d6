"""What other contexts may use of the catalog: a resource's current terms, read in their own transaction."""

from __future__ import annotations

from sqlalchemy import Connection

from bookwell.catalog.adapters.sql import SqlResourceRepository
from bookwell.catalog.domain import Resource
from bookwell.platform.kernel.cache import Scope


def resource(connection: Connection, organization_id: str, resource_id: str, *, lock: bool) -> Resource | None:
    """The live resource, read on the caller's connection; with `lock`, its row is held until that
    transaction ends, which serialises everything that locks the same resource."""
    repository = SqlResourceRepository(connection, changed=_reads_only)
    if lock:
        repository.lock(organization_id, resource_id)
    return repository.get(organization_id, resource_id)


def _reads_only(scope: Scope) -> None:
    raise RuntimeError("the catalog's facade reads; resources change through the catalog's own unit of work")
