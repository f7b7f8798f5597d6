"""The platform's own scheduled jobs: the saga sweep, re-drive of lost deliveries, and purges
(idempotency keys, delivered events, ended rate-limit windows); and the readings of its backlogs
that the scheduler's metrics take when scraped (outbox, due deliveries, job queues, dead letters, sagas).

Registered like a context's (`register`), before the contexts. Each is idempotent and safe to run
twice at once (two schedulers, a re-sent message): the timetable may be late or doubled, never harmful.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from bookwell.platform.idempotency import IdempotencyStore
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.messaging.inbox import overdue
from bookwell.platform.messaging.inbox import purge_delivered
from bookwell.platform.messaging.jobs.config import periodic_queue
from bookwell.platform.messaging.outbox import EVENT_RETENTION
from bookwell.platform.messaging.outbox import oldest_unsent
from bookwell.platform.messaging.outbox import unsent
from bookwell.platform.observability.exporter import age
from bookwell.platform.observability.exporter import gauge
from bookwell.platform.ratelimit import purge_expired
from bookwell.platform.registry import ADVANCE_SAGA
from bookwell.platform.registry import Registry

log = structlog.get_logger("bookwell.maintenance")
HOUR = 3600.0


def register(registry: Registry) -> None:
    """Schedule the platform's jobs."""
    jobs, sagas, settings, database = registry.jobs, registry.sagas, registry.settings, registry.database

    def sweep_sagas() -> int:
        """Advance every saga whose next step is due: retries, and sagas whose worker died."""
        due = sagas.due()
        for saga_id in due:
            jobs.send(ADVANCE_SAGA, saga_id)
        return len(due)

    def purge_idempotency_keys() -> int:
        return IdempotencyStore(database).purge(utcnow())

    def purge_events() -> int:
        before = utcnow() - EVENT_RETENTION
        with database.engine.begin() as connection:
            purged = purge_delivered(connection, before)
        purged_failures = jobs.purge_failures(before)
        log.info("events_purged", events=purged, job_failures=purged_failures)
        return purged

    def purge_rate_limit_windows() -> int:
        """Forget the counters of rate-limit windows that ended (the database storage's; Redis expires its own)."""
        return purge_expired(database, utcnow())

    def redrive() -> int:
        """Send lost deliveries again, and say so when the relay or the job queue is behind (the
        API never waits for either: a request only writes to the outbox)."""
        now = utcnow()
        with database.engine.connect() as connection:
            oldest = oldest_unsent(connection)
            late, oldest_due = overdue(connection, now - timedelta(seconds=settings.stall_after_s))
        if oldest is not None and (lag := (now - oldest).total_seconds()) > settings.stall_after_s:
            log.warning("outbox_lagging", oldest_unsent_age_s=round(lag, 1))
        if oldest_due is not None:
            log.warning(
                "deliveries_lagging", overdue=late, oldest_overdue_s=round((now - oldest_due).total_seconds(), 1)
            )
        return jobs.redrive()

    read_backlogs(registry)
    registry.schedule("bookwell.deliveries.redrive", settings.redrive_every_s, redrive)
    registry.schedule("bookwell.sagas.sweep", settings.saga_sweep_every_s, sweep_sagas)
    registry.schedule("bookwell.idempotency.purge", HOUR, purge_idempotency_keys)
    registry.schedule("bookwell.outbox.purge", HOUR, purge_events)
    registry.schedule("bookwell.ratelimits.purge", HOUR, purge_rate_limit_windows)


def read_backlogs(registry: Registry) -> None:
    """Add the platform's backlogs to the scheduler's metrics."""
    jobs, sagas, settings, database = registry.jobs, registry.sagas, registry.settings, registry.database

    def backlogs() -> Iterator[Metric]:
        """What waits, and for how long: events for the relay, due deliveries for a worker, dead
        letters for an operator, running sagas for their next step."""
        now = utcnow()
        with database.engine.connect() as connection:
            events, oldest_event = unsent(connection)
            due, oldest_due = overdue(connection, now)
        running, oldest_saga = sagas.running()
        yield gauge("bookwell_outbox_unsent_events", "Committed events the relay has not delivered yet.", events)
        yield gauge(
            "bookwell_outbox_oldest_unsent_age_seconds",
            "How long the oldest undelivered event has waited for the relay (0: none waits).",
            age(now, oldest_event),
        )
        yield gauge("bookwell_inbox_due_deliveries", "Handler runs that are due and not done (pending).", due)
        yield gauge(
            "bookwell_inbox_oldest_due_age_seconds",
            "How long past its due time the oldest pending handler run is (0: none is due).",
            age(now, oldest_due),
        )
        yield gauge("bookwell_dead_letters", "Dead letters not replayed yet.", jobs.dead_letter_count())
        yield gauge("bookwell_sagas_running", "Sagas not yet ended.", running)
        yield gauge(
            "bookwell_saga_oldest_running_age_seconds",
            "How long ago the oldest running saga started (0: none runs).",
            age(now, oldest_saga),
        )

    def job_queues() -> Iterator[Metric]:
        """The broker's queues: jobs no worker has taken yet (a queue the broker does not answer for is left out)."""
        family = GaugeMetricFamily("bookwell_job_queue_depth", "Jobs waiting in the broker's queue.", labels=["queue"])
        for queue in (settings.job_queue, periodic_queue(settings)):
            depth = jobs.queue_depth(queue)
            if depth is not None:
                family.add_metric([queue], depth)
        yield family

    registry.read_state(backlogs)
    registry.read_state(job_queues)
