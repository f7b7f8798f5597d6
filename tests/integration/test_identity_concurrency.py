"""Revoking keys concurrently never leaves an organization without a key that can manage keys."""

from __future__ import annotations

import contextlib
import threading
from functools import partial

from sqlalchemy import Connection

from bookwell.identity import service
from bookwell.identity.adapters.sql import SqlApiKeyRepository
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.identity.domain import SCOPES
from bookwell.identity.domain import LastManagingKey
from bookwell.platform.db import Database
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.kernel.principal import Principal


def owner(organization_id: str) -> Principal:
    """A caller with every scope in `organization_id`, as an organization's first key is."""
    return Principal(organization_id=organization_id, credential_id="key_first", scopes=SCOPES)


class CountThenWait(SqlApiKeyRepository):
    """Holds each transaction right after its count until the other has counted too (or 1 s passed).

    Without serialisation both transactions count two managing keys and both revoke; with it,
    the second cannot count until the first has committed, so the wait times out and it sees one.
    """

    both_counted = threading.Barrier(2, timeout=1)

    def count_active_with_scope(self, organization_id: str, scope: str) -> int:
        count = super().count_active_with_scope(organization_id, scope)
        with contextlib.suppress(threading.BrokenBarrierError):
            self.both_counted.wait()
        return count


class RacingUnitOfWork(SqlIdentityUnitOfWork):
    def _open_repositories(self, connection: Connection) -> None:
        super()._open_repositories(connection)
        self.api_keys = CountThenWait(connection)


def test_two_simultaneous_revocations_of_the_last_two_managing_keys(database: Database) -> None:
    uow = partial(SqlIdentityUnitOfWork, database)
    organization, _ = service.create_organization(uow=uow(), name="Acme")
    keys = [
        service.create_api_key(
            uow=uow(),
            granted_by=owner(organization.id),
            name=f"k{n}",
            scopes=frozenset({"api_keys:manage"}),
        )[0]
        for n in range(2)
    ]
    # The organization's first key also manages keys: revoke it first, leaving exactly two.
    listed = service.list_api_keys(uow=uow(), organization_id=organization.id, page=PageRequest(10))
    first = next(k for k in listed.items if k.name == "initial key")
    service.revoke_api_key(uow=uow(), organization_id=organization.id, api_key_id=first.id)

    CountThenWait.both_counted.reset()
    outcomes: list[str] = []

    def revoke(key_id: str) -> None:
        try:
            service.revoke_api_key(uow=RacingUnitOfWork(database), organization_id=organization.id, api_key_id=key_id)
            outcomes.append("revoked")
        except LastManagingKey:
            outcomes.append("refused")

    threads = [threading.Thread(target=revoke, args=(key.id,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "revoked"]
