"""What other parts of Bookwell may use of identity: turning a bearer token into a principal."""

from __future__ import annotations

from collections.abc import Callable

from bookwell.identity import service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.kernel.principal import Principal


def authenticator(uow_factory: Callable[..., IdentityUnitOfWork]) -> Callable[[str], Principal | None]:
    """The function the HTTP layer calls with each bearer token.

    The lookup reads only; a write happens at most once a minute per key, to move
    `last_used_at`, so authenticating does not take SQLite's write lock on every request.
    """

    def authenticate(token: str) -> Principal | None:
        found = service.authenticate(uow=uow_factory(readonly=True), token=token)
        if found is None:
            return None
        if found.usage_due:
            service.record_key_use(
                uow=uow_factory(),
                organization_id=found.principal.organization_id,
                api_key_id=found.principal.credential_id,
            )
        return found.principal

    return authenticate
