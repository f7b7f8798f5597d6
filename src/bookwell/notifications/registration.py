"""Notifications registers itself: its unit of work, its views, the webhook fan-out handler, the
dispatcher the scheduler runs, the attempt job, the backlog reading of the scheduler's metrics, and
`bookwell webhooks`."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import click

from bookwell.notifications import api
from bookwell.notifications.adapters.http import UrlPolicy
from bookwell.notifications.adapters.http import WebhookSender
from bookwell.notifications.adapters.sql import SqlNotificationsUnitOfWork
from bookwell.notifications.cli import webhooks
from bookwell.notifications.ports import Dispatcher
from bookwell.notifications.ports import NotificationsUnitOfWork
from bookwell.notifications.tasks import ATTEMPT
from bookwell.notifications.tasks import DISPATCH
from bookwell.notifications.tasks import FAN_OUT
from bookwell.notifications.tasks import Webhooks
from bookwell.platform.registry import Registry
from bookwell.settings import parse_delays

commands: tuple[click.Command, ...] = (webhooks,)
# A claimed attempt's job may wait this long in the broker before the delivery is claimed again. A
# claim whose job was lost (its worker killed between claiming and sending) holds one of the
# endpoint's slots, its only one while it fails, until then: short, so the endpoint does not stall.
CLAIM_MARGIN_S = 30.0


def register(registry: Registry) -> None:
    """Wire notifications into `registry`."""
    settings = registry.settings
    uow = partial(SqlNotificationsUnitOfWork, registry.database)
    policy = UrlPolicy.from_settings(settings)
    sender = WebhookSender(
        policy, connect_timeout_s=settings.webhook_connect_timeout_s, timeout_s=settings.webhook_timeout_s
    )
    hooks = Webhooks(
        uow=uow,
        sender=sender,
        send_job=registry.jobs.send,
        secret_key=settings.secret_key,
        concurrency=settings.webhook_endpoint_concurrency,
        lease=timedelta(seconds=settings.webhook_connect_timeout_s + settings.webhook_timeout_s + CLAIM_MARGIN_S),
        disable_after=timedelta(seconds=settings.webhook_disable_after_s),
        schedule=parse_delays(settings.webhook_retry_schedule_s),
    )
    registry.add_unit_of_work(NotificationsUnitOfWork, uow)
    registry.inject(api.uow, uow)
    wiring = api.Wiring(
        policy=policy,
        secret_key=settings.secret_key,
        grace=timedelta(seconds=settings.webhook_secret_grace_s),
        kick=partial(registry.jobs.send, DISPATCH),  # a worker dispatches: no claims written in a request
    )
    registry.inject(api.wiring, lambda: wiring)
    registry.add_views(api.views)
    registry.subscriptions.subscribe(FAN_OUT, hooks.event_types, hooks.fan_out)
    registry.schedule(DISPATCH, settings.webhook_dispatch_every_s, hooks.dispatch)
    registry.read_state(hooks.backlog)

    @registry.jobs.task(ATTEMPT)
    def attempt(delivery_id: str, token: str) -> None:  # a plain function: Celery checks arguments against it
        hooks.attempt(delivery_id, token)

    registry.provide(Dispatcher, hooks)
