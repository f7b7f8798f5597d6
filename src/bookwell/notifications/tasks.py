"""Webhook deliveries in the background: made from events, claimed when due, attempted by workers.

    event ─inbox─▶ fan_out: a delivery row per endpoint that takes it (in the inbox row's transaction)
                      └─ after commit: dispatch
    dispatch (then, and every `webhook_dispatch_every_s` from the scheduler):
        claim due deliveries, at most `webhook_endpoint_concurrency` per endpoint (one while it
        fails), for a lease; send an attempt job for each
    attempt job: sign, POST (no transaction open), then record the attempt and the delivery's
        next state in one transaction: succeeded, due again on the schedule, or dead

A worker that dies mid-attempt leaves its claim to lapse; the delivery is then due again and the
next dispatch claims it, so no delivery waits on a job the broker lost. Receivers see an attempt
at least once and deduplicate by `webhook-id`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

import structlog

from bookwell.notifications import domain
from bookwell.notifications import service
from bookwell.notifications.adapters.http import WebhookSender
from bookwell.notifications.adapters.sql import to_send
from bookwell.notifications.domain import EVENT_TYPES
from bookwell.notifications.domain import Attempt
from bookwell.notifications.domain import DeliveryStatus
from bookwell.notifications.domain import DisabledReason
from bookwell.notifications.domain import Endpoint
from bookwell.notifications.domain import succeeded
from bookwell.notifications.events import endpoint_event
from bookwell.notifications.ports import NotificationsUnitOfWork
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.messaging.outbox import LoggedEvent

FAN_OUT = "notifications.webhooks"  # the inbox handler's name: stable, it keys inbox rows
DISPATCH = "bookwell.webhooks.dispatch"
ATTEMPT = "bookwell.webhooks.attempt"
DISPATCH_BATCH = 500
log = structlog.get_logger("bookwell.notifications")


class Webhooks:
    """The fan-out handler, the dispatcher and the attempt, wired by `registration`."""

    def __init__(
        self,
        *,
        uow: Callable[..., NotificationsUnitOfWork],
        sender: WebhookSender,
        send_job: Callable[[str, str], None],
        secret_key: str,
        concurrency: int,
        lease: timedelta,
        disable_after: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.uow = uow
        self.sender = sender
        self.send_job = send_job
        self.secret_key = secret_key
        self.concurrency = concurrency
        self.lease = lease
        self.disable_after = disable_after
        self.clock = clock

    event_types = sorted(EVENT_TYPES)

    def fan_out(self, event: LoggedEvent) -> None:
        """The inbox handler: a delivery per endpoint that takes the event."""
        service.fan_out(uow=self.uow(), event=to_send(event), kick=self.kick)

    def kick(self) -> None:
        """Dispatch now (after a commit that made deliveries due)."""
        self.dispatch()

    def dispatch(self) -> int:
        """Claim what is due and send an attempt job for each; how many were sent."""
        now = self.clock()
        with self.uow(readonly=True) as reading:  # most passes find nothing: no write lock for them
            due = reading.deliveries.due(now, limit=DISPATCH_BATCH, per_endpoint=self.concurrency)
        if not due:
            return 0
        with self.uow() as uow:
            claimed = uow.deliveries.claim(due, now, until=now + self.lease)
            uow.commit()
        for delivery_id in claimed:
            # A send that fails leaves the claim to lapse: the delivery is due again after the lease.
            self.send_job(ATTEMPT, delivery_id)
        return len(claimed)

    def attempt(self, delivery_id: str) -> Attempt | None:
        """One attempt of a claimed delivery, recorded with its outcome; None when there is nothing to send."""
        with self.uow(readonly=True) as uow:
            delivery = uow.deliveries.by_id(delivery_id)
            endpoint = None if delivery is None else uow.endpoints.by_id(delivery.endpoint_id)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING or endpoint is None or not endpoint.active:
            return None  # done meanwhile, deleted, or its endpoint was disabled: it resumes if re-enabled
        now = self.clock()
        secrets = [domain.derive_secret(self.secret_key, salt) for salt in endpoint.salts(now)]
        headers = domain.headers(secrets, delivery.event_id, int(now.timestamp()), delivery.body)
        attempt = self.sender.send(endpoint.url, headers, delivery.body, number=delivery.attempts + 1, now=now)
        after = delivery.after(attempt)
        with self.uow() as uow:
            if uow.deliveries.record(after, attempt):
                self._note_health(uow, endpoint.id, attempt, now)
                uow.commit()
        log.info(
            "webhook_attempted",
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            event_id=delivery.event_id,
            status_code=attempt.status_code,
            error=attempt.error,
            latency_ms=attempt.latency_ms,
            outcome=str(after.status),
        )
        return attempt

    def _note_health(self, uow: NotificationsUnitOfWork, endpoint_id: str, attempt: Attempt, now: datetime) -> None:
        if succeeded(attempt):
            uow.endpoints.note_health(endpoint_id, failing_since=None)
            return
        current = uow.endpoints.by_id(endpoint_id)
        if current is None or not current.active:
            return
        uow.endpoints.note_health(endpoint_id, failing_since=now)
        failing_since = current.failing_since = current.failing_since or now
        if attempt.status_code == 410:
            self._disable(uow, current, DisabledReason.GONE, now)
        elif now - failing_since >= self.disable_after:
            self._disable(uow, current, DisabledReason.FAILING, now)

    @staticmethod
    def _disable(uow: NotificationsUnitOfWork, endpoint: Endpoint, reason: DisabledReason, now: datetime) -> None:
        previous = endpoint.version
        endpoint.disable(reason, now)
        if uow.endpoints.save(endpoint, previous_version=previous):
            uow.events.add(endpoint_event(endpoint, "disabled"))
            log.warning("webhook_endpoint_disabled", endpoint_id=endpoint.id, reason=str(reason))
