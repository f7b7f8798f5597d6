"""What other parts of Bookwell may use of identity: turning a bearer token into a principal."""

from __future__ import annotations

from collections.abc import Callable

from bookwell.identity import service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.kernel.principal import Principal


def authenticator(
    uow_factory: Callable[[], IdentityUnitOfWork],
) -> Callable[[str], Principal | None]:
    """The function the HTTP layer calls with each bearer token."""

    def authenticate(token: str) -> Principal | None:
        return service.authenticate(uow=uow_factory(), token=token)

    return authenticate
