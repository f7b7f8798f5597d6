"""Payments registers itself: its unit of work, its views, the provider adapter the settings name,
the refund saga's step, and the `Payments` facade the booking saga charges through."""

from __future__ import annotations

from functools import partial

import click

from bookwell.payments import api
from bookwell.payments import tasks
from bookwell.payments.adapters.fake import FakePaymentProvider
from bookwell.payments.adapters.http import HttpPaymentProvider
from bookwell.payments.adapters.sql import SqlPaymentsUnitOfWork
from bookwell.payments.facade import Payments
from bookwell.payments.ports import PaymentProvider
from bookwell.payments.ports import PaymentsUnitOfWork
from bookwell.platform.registry import Registry
from bookwell.settings import Settings

commands: tuple[click.Command, ...] = ()


def register(registry: Registry) -> None:
    """Wire payments into `registry`."""
    uow = partial(SqlPaymentsUnitOfWork, registry.database)
    provider = payment_provider(registry.settings)
    registry.add_unit_of_work(PaymentsUnitOfWork, uow)
    registry.inject(api.uow, uow)
    registry.inject(api.kick, registry.kick_saga)
    registry.add_views(api.views)
    tasks.register(registry.sagas, database=registry.database, uow=uow, provider=provider)
    registry.provide(PaymentProvider, provider)
    registry.provide(Payments, Payments(registry.database, provider, registry.kick_saga))


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
