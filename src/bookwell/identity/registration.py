"""Identity registers itself: its unit of work, its views, the caller's authenticator, `bookwell org`."""

from __future__ import annotations

from functools import partial

import click

from bookwell.identity import api
from bookwell.identity import facade
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.identity.cli import org
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.registry import Registry

commands: tuple[click.Command, ...] = (org,)


def register(registry: Registry) -> None:
    """Wire identity into `registry`."""
    uow = partial(SqlIdentityUnitOfWork, registry.database)
    registry.add_unit_of_work(IdentityUnitOfWork, uow)
    registry.inject(api.uow, uow)
    registry.add_views(api.views)
    authenticator = facade.KeyAuthenticator(uow, trust_s=registry.settings.credential_trust_s)
    registry.inject(api.trusted_keys, lambda: authenticator)
    registry.authenticate_with(authenticator)
