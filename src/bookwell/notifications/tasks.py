"""Webhook deliveries in the background: made from events, claimed when due, attempted by workers.

    event ─inbox─▶ fan_out: a delivery row per endpoint that takes it (in the inbox row's transaction)
                      └─ after commit: dispatch
    dispatch (then, as a job the API sends, and every `webhook_dispatch_every_s` from the scheduler):
        claim due deliveries, at most `webhook_endpoint_concurrency` per endpoint (one while it
        fails), for a lease, under a token of this dispatch; send an attempt job for each
    attempt job: unless the delivery is still pending under its job's token, nothing; else sign,
        POST (no transaction open), then record the attempt and the delivery's next state in one
        transaction: succeeded, due again on the schedule, or dead; then dispatch again (its slot is free)

A worker that dies mid-attempt leaves its claim to lapse; the delivery is then due again and the
next dispatch claims it under a new token, so no delivery waits on a job the broker lost, and a
job the broker redelivers or that outlived its claim sends nothing out of turn. Receivers see an
attempt at least once and deduplicate by `webhook-id`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta

import structlog
from prometheus_client.metrics_core import Metric

from bookwell.notifications import domain
from bookwell.notifications import service
from bookwell.notifications.adapters.http import WebhookSender
from bookwell.notifications.adapters.sql import to_send
from bookwell.notifications.domain import EVENT_TYPES
from bookwell.notifications.domain import RETRY_SCHEDULE_S
from bookwell.notifications.domain import Attempt
from bookwell.notifications.domain import DeliveryStatus
from bookwell.notifications.domain import DisabledReason
from bookwell.notifications.domain import Endpoint
from bookwell.notifications.domain import succeeded
from bookwell.notifications.events import endpoint_event
from bookwell.notifications.ports import NotificationsUnitOfWork
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.platform.observability.exporter import age
from bookwell.platform.observability.exporter import gauge
from bookwell.platform.observability.metrics import WEBHOOK_DELIVERIES
from bookwell.platform.observability.metrics import observe_call

FAN_OUT = "notifications.webhooks"  # the inbox handler's name: stable, it keys inbox rows
DISPATCH = "bookwell.webhooks.dispatch"
ATTEMPT = "bookwell.webhooks.attempt"
DISPATCH_BATCH = 500
log = structlog.get_logger("bookwell.notifications")
DEPENDENCY = "webhook_receiver"  # the label of attempts in the dependency metrics


class Webhooks:
    """The fan-out handler, the dispatcher and the attempt, wired by `registration`."""

    def __init__(
        self,
        *,
        uow: Callable[..., NotificationsUnitOfWork],
        sender: WebhookSender,
        send_job: Callable[[str, str, str], None],
        secret_key: str,
        concurrency: int,
        lease: timedelta,
        disable_after: timedelta,
        schedule: Sequence[float] = RETRY_SCHEDULE_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.uow = uow
        self.sender = sender
        self.send_job = send_job
        self.secret_key = secret_key
        self.concurrency = concurrency
        self.lease = lease
        self.disable_after = disable_after
        self.schedule = tuple(schedule)
        self.clock = clock

    event_types = sorted(EVENT_TYPES)

    def fan_out(self, event: LoggedEvent) -> None:
        """The inbox handler: a delivery per endpoint that takes the event."""
        service.fan_out(uow=self.uow(), event=to_send(event), kick=self.kick)

    def kick(self) -> None:
        """Dispatch now (after a commit in a worker that made deliveries due)."""
        self.dispatch()

    def dispatch(self) -> int:
        """Claim what is due and send an attempt job for each; how many were sent."""
        now = self.clock()
        with self.uow(readonly=True) as reading:  # most passes find nothing: no write lock for them
            if not reading.deliveries.due(now, limit=1, per_endpoint=self.concurrency):
                return 0
        token = secrets.token_hex(16)
        with self.uow() as uow:
            # Chosen and claimed in one transaction that dispatchers take in turn, so two of them
            # never both fill an endpoint's free slots.
            uow.deliveries.take_dispatch_turn()
            due = uow.deliveries.due(now, limit=DISPATCH_BATCH, per_endpoint=self.concurrency)
            claimed = uow.deliveries.claim(due, now, until=now + self.lease, token=token)
            uow.commit()
        for delivery_id in claimed:
            # A send that fails leaves the claim to lapse: the delivery is due again after the lease.
            self.send_job(ATTEMPT, delivery_id, token)
        return len(claimed)

    def attempt(self, delivery_id: str, token: str) -> Attempt | None:
        """One attempt of a delivery claimed under `token`, recorded with its outcome; None when there
        is nothing to send."""
        now = self.clock()
        with self.uow(readonly=True) as uow:
            delivery = uow.deliveries.by_id(delivery_id)
            endpoint = None if delivery is None else uow.endpoints.by_id(delivery.endpoint_id)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING or delivery.claim != token:
            return None  # done meanwhile, deleted, restarted, or claimed again: another job has it
        if delivery.claimed_until is None or delivery.claimed_until <= now:
            return None  # the job came too late: its claim lapsed, and the next dispatch claims it afresh
        if endpoint is None or not endpoint.active:
            with self.uow() as uow:  # disabled since: due again at once when it is enabled
                uow.deliveries.release(delivery_id, token)
                uow.commit()
            return None
        secrets = [domain.derive_secret(self.secret_key, salt) for salt in endpoint.salts(now)]
        headers = domain.headers(secrets, delivery.event_id, int(now.timestamp()), delivery.body)
        attempt = self.sender.send(endpoint.url, headers, delivery.body, now=now)
        after = delivery.after(attempt, self.schedule)
        with self.uow() as uow:
            stored = uow.deliveries.record(after, attempt, token=token)
            if stored:
                self._note_health(uow, endpoint.id, attempt, now)
            uow.commit()  # logged even when the claim was taken over meanwhile
        observe_call(DEPENDENCY, _outcome(attempt), attempt.latency_ms / 1000)
        if stored and after.status is not DeliveryStatus.PENDING:
            WEBHOOK_DELIVERIES.labels(str(after.status)).inc()
        log.info(
            "webhook_attempted",
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            event_id=delivery.event_id,
            status_code=attempt.status_code,
            error=attempt.error,
            latency_ms=attempt.latency_ms,
            outcome=str(after.status) if stored else "superseded",  # another claim's attempt decides
        )
        try:
            self.dispatch()  # its slot is free: the endpoint's next due delivery goes now, not at the next sweep
        except Exception:  # the attempt is recorded; the scheduler's sweep dispatches instead
            log.warning("webhook_dispatch_after_attempt_failed", delivery_id=delivery.id, exc_info=True)
        return attempt

    def backlog(self) -> Iterator[Metric]:
        """The scheduler's reading of what waits to be sent (`Registry.read_state`)."""
        now = self.clock()
        with self.uow(readonly=True) as reading:
            pending, due, oldest_due = reading.deliveries.backlog(now)
        yield gauge("bookwell_webhook_deliveries_pending", "Webhook deliveries not yet succeeded or dead.", pending)
        yield gauge(
            "bookwell_webhook_deliveries_due",
            "Webhook deliveries to active endpoints due for an attempt and not claimed (a failing endpoint"
            " takes one at a time).",
            due,
        )
        yield gauge(
            "bookwell_webhook_oldest_due_age_seconds",
            "How long past its time the oldest due, unclaimed delivery to an active endpoint is (0: none is).",
            age(now, oldest_due),
        )

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


def _outcome(attempt: Attempt) -> str:
    """An attempt's outcome as a bounded label: `succeeded`, the answer's class (`http_4xx`,
    `http_5xx`, ...), or the error kind (`timeout`, `url_forbidden`, ...)."""
    if succeeded(attempt):
        return "succeeded"
    if attempt.status_code is not None:
        return f"http_{attempt.status_code // 100}xx"
    return attempt.error or "failed"
