"""The composition root: builds the database, units of work and adapters; tests hand in their own."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bookwell.booking.adapters.sql import SqlBookingUnitOfWork
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.booking.tasks import BookingSaga
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.catalog.ports import CatalogUnitOfWork
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.payments import tasks as payments_tasks
from bookwell.payments.adapters.fake import FakePaymentProvider
from bookwell.payments.adapters.http import HttpPaymentProvider
from bookwell.payments.adapters.sql import SqlPaymentsUnitOfWork
from bookwell.payments.facade import Payments
from bookwell.payments.ports import PaymentProvider
from bookwell.payments.ports import PaymentsUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.jobs.app import Jobs
from bookwell.platform.workflow.saga import Sagas
from bookwell.settings import Settings
from bookwell.tasks import ADVANCE_SAGA
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
    sagas: Sagas
    kick_saga: Callable[..., None]
    payments_uow: Callable[..., PaymentsUnitOfWork]
    payment_provider: PaymentProvider


def bootstrap(settings: Settings, *, database: Database | None = None) -> Container:
    """Wire Bookwell for `settings`; pass `database` to share one engine (tests do)."""
    database = database or Database(settings)
    subscriptions = Subscriptions()
    for module in filter(None, (name.strip() for name in settings.handler_modules.split(","))):
        importlib.import_module(module).register(subscriptions, database)
    jobs = Jobs(settings, database, subscriptions)
    booking_uow = partial(SqlBookingUnitOfWork, database)
    payments_uow = partial(SqlPaymentsUnitOfWork, database)
    provider = payment_provider(settings)
    sagas = Sagas(
        database,
        lease_s=settings.saga_lease_s,
        backoff_base_s=settings.job_backoff_base_s,
        backoff_cap_s=settings.job_backoff_cap_s,
    )
    kick_saga = partial(_send_saga, jobs)
    payments_tasks.register(sagas, database=database, uow=payments_uow, provider=provider)
    BookingSaga(
        sagas=sagas,
        database=database,
        booking_uow=booking_uow,
        payments=Payments(database, provider, kick_saga),
        kick=kick_saga,
    ).register(subscriptions)
    register_scheduled_jobs(jobs, booking_uow=booking_uow, sagas=sagas)
    return Container(
        settings=settings,
        database=database,
        identity_uow=partial(SqlIdentityUnitOfWork, database),
        catalog_uow=partial(SqlCatalogUnitOfWork, database),
        booking_uow=booking_uow,
        subscriptions=subscriptions,
        jobs=jobs,
        sagas=sagas,
        kick_saga=kick_saga,
        payments_uow=payments_uow,
        payment_provider=provider,
    )


def _send_saga(jobs: Jobs, saga_id: str) -> None:
    jobs.send(ADVANCE_SAGA, saga_id)


def payment_provider(settings: Settings) -> PaymentProvider:
    """The provider `settings` name: the in-process fake, or a provider's HTTP API."""
    if settings.payment_provider == "fake":
        return FakePaymentProvider()
    assert settings.payment_provider_url is not None  # the settings refuse http without one
    return HttpPaymentProvider(
        settings.payment_provider_url,
        timeout_s=settings.payment_timeout_s,
        retry_attempts=settings.payment_retry_attempts,
        breaker_fail_max=settings.payment_breaker_fail_max,
        breaker_reset_s=settings.payment_breaker_reset_s,
    )
