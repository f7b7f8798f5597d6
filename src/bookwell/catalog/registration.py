"""The catalog registers itself: its unit of work and its views."""

from __future__ import annotations

from functools import partial

import click

from bookwell.catalog import api
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.catalog.ports import CatalogUnitOfWork
from bookwell.platform.registry import Registry

commands: tuple[click.Command, ...] = ()


def register(registry: Registry) -> None:
    """Wire the catalog into `registry`."""
    uow = partial(SqlCatalogUnitOfWork, registry.database, cache=registry.cache)
    registry.add_unit_of_work(CatalogUnitOfWork, uow)
    registry.inject(api.uow, uow)
    registry.inject(api.cache, lambda: registry.cache)
    registry.add_views(api.views)
