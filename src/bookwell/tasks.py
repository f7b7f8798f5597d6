"""Bookwell's scheduled jobs and the scheduler's timetable (`bookwell scheduler` sends, workers run).

Each job is idempotent and safe to run twice at once (two schedulers, a re-sent message): the
timetable may be late or doubled, never harmful. Scheduled jobs have a queue of their own, so they
never wait behind a backlog of deliveries, and a message expires after its interval, so a stopped
worker does not come back to a pile of stale copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from bookwell.booking import service as booking_service
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.platform.idempotency import IdempotencyStore
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.messaging.inbox import purge_delivered
from bookwell.platform.messaging.jobs.app import Jobs
from bookwell.platform.messaging.jobs.config import periodic_queue
from bookwell.platform.messaging.outbox import EVENT_RETENTION
from bookwell.platform.messaging.outbox import oldest_unsent
from bookwell.platform.workflow.saga import Sagas
from bookwell.settings import Settings

log = structlog.get_logger("bookwell.tasks")
HOUR = 3600.0


ADVANCE_SAGA = "bookwell.sagas.advance"


def register_scheduled_jobs(jobs: Jobs, *, booking_uow: Callable[[], BookingUnitOfWork], sagas: Sagas) -> None:
    """Register the jobs the scheduler sends, and the saga job they and the sagas' starters send."""

    @jobs.task(ADVANCE_SAGA)
    def advance_saga(saga_id: str) -> None:
        sagas.advance(saga_id)

    @jobs.task("bookwell.sagas.sweep")
    def sweep_sagas() -> int:
        """Advance every saga whose next step is due: retries, and sagas whose worker died."""
        due = sagas.due()
        for saga_id in due:
            jobs.send(ADVANCE_SAGA, saga_id)
        return len(due)

    @jobs.task("bookwell.holds.expire")
    def expire_holds() -> int:
        total = booking_service.expire_all_holds(uow=booking_uow)
        if total:
            log.info("holds_expired", count=total)
        return total

    @jobs.task("bookwell.idempotency.purge")
    def purge_idempotency_keys() -> int:
        return IdempotencyStore(jobs.database).purge(utcnow())

    @jobs.task("bookwell.outbox.purge")
    def purge_events() -> int:
        before = utcnow() - EVENT_RETENTION
        with jobs.database.engine.begin() as connection:
            purged = purge_delivered(connection, before)
        purged_failures = jobs.purge_failures(before)
        log.info("events_purged", events=purged, job_failures=purged_failures)
        return purged

    @jobs.task("bookwell.deliveries.redrive")
    def redrive() -> int:
        """Send lost deliveries again, and say so when the relay is behind."""
        with jobs.database.engine.connect() as connection:
            oldest = oldest_unsent(connection)
        if oldest is not None:
            lag = (utcnow() - oldest).total_seconds()
            if lag > jobs.settings.stall_after_s:
                log.warning("outbox_lagging", oldest_unsent_age_s=round(lag, 1))
        return jobs.redrive()


def timetable(settings: Settings) -> dict[str, dict[str, Any]]:
    """What the scheduler sends and how often (seconds)."""
    every = {
        "bookwell.holds.expire": settings.holds_expire_every_s,
        "bookwell.deliveries.redrive": settings.redrive_every_s,
        "bookwell.sagas.sweep": settings.saga_sweep_every_s,
        "bookwell.idempotency.purge": HOUR,
        "bookwell.outbox.purge": HOUR,
    }
    queue = periodic_queue(settings)
    return {
        name: {"task": name, "schedule": seconds, "options": {"expires": seconds, "queue": queue}}
        for name, seconds in every.items()
    }
