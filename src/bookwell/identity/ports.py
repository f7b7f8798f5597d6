"""What the identity service needs from the outside world."""

from __future__ import annotations

from typing import Protocol

from bookwell.identity.domain import ApiKey
from bookwell.identity.domain import Organization
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.kernel.uow import UnitOfWork


class OrganizationRepository(Protocol):
    def add(self, organization: Organization) -> None: ...

    def get(self, organization_id: str) -> Organization | None: ...

    def lock(self, organization_id: str) -> None:
        """Serialise changes to the organization's credentials until the transaction ends."""
        ...


class ApiKeyRepository(Protocol):
    def add(self, key: ApiKey) -> None: ...

    def get(self, organization_id: str, key_id: str) -> ApiKey | None: ...

    def by_prefix(self, prefix: str) -> ApiKey | None: ...

    def list(self, organization_id: str, page: PageRequest) -> Page[ApiKey]: ...

    def count_active_with_scope(self, organization_id: str, scope: str) -> int:
        """Active keys of the organization that hold `scope`."""
        ...

    def save_usage(self, key: ApiKey) -> None:
        """Persist `last_used_at` and `revoked_at`."""
        ...


class IdentityUnitOfWork(UnitOfWork, Protocol):
    @property
    def organizations(self) -> OrganizationRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...


class TrustedKeys(Protocol):
    """The keys this process trusts without asking the database (the authenticator's, ADR 0030)."""

    def forget(self, credential_id: str) -> None:
        """Stop trusting the key `credential_id` in this process (it was just revoked)."""
        ...
