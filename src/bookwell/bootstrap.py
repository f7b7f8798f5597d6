"""The composition root: builds the database, units of work and adapters; tests hand in their own."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bookwell.booking.adapters.sql import SqlBookingUnitOfWork
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.catalog.ports import CatalogUnitOfWork
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.jobs import Jobs
from bookwell.platform.subscriptions import Subscriptions
from bookwell.settings import Settings
from bookwell.tasks import register_scheduled_jobs


@dataclass(frozen=True)
class Container:
    """Everything the app, the CLI and the workers are wired with."""

    settings: Settings
    database: Database
    identity_uow: Callable[..., IdentityUnitOfWork]
    catalog_uow: Callable[..., CatalogUnitOfWork]
    booking_uow: Callable[..., BookingUnitOfWork]
    subscriptions: Subscriptions
    jobs: Jobs


def bootstrap(settings: Settings, *, database: Database | None = None) -> Container:
    """Wire Bookwell for `settings`; pass `database` to share one engine (tests do)."""
    database = database or Database(settings)
    subscriptions = Subscriptions()
    for module in filter(None, (name.strip() for name in settings.handler_modules.split(","))):
        importlib.import_module(module).register(subscriptions, database)
    jobs = Jobs(settings, database, subscriptions)
    booking_uow = partial(SqlBookingUnitOfWork, database)
    register_scheduled_jobs(jobs, booking_uow=booking_uow)
    return Container(
        settings=settings,
        database=database,
        identity_uow=partial(SqlIdentityUnitOfWork, database),
        catalog_uow=partial(SqlCatalogUnitOfWork, database),
        booking_uow=booking_uow,
        subscriptions=subscriptions,
        jobs=jobs,
    )
