"""The base of every Bookwell task: retries with full jitter, failures on record, dead letters, context."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from datetime import timedelta
from time import perf_counter
from typing import TYPE_CHECKING
from typing import Any

import structlog
from celery import Task
from celery.exceptions import Retry
from sqlalchemy import Connection
from sqlalchemy import func
from sqlalchemy import select

from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.context import CARRIED
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.context import bound
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.kernel.retry import backoff_delay
from bookwell.platform.messaging.inbox import DEAD
from bookwell.platform.messaging.inbox import PENDING
from bookwell.platform.messaging.inbox import Delivery
from bookwell.platform.messaging.inbox import move
from bookwell.platform.messaging.jobs.records import dead_letters
from bookwell.platform.messaging.jobs.records import job_failures
from bookwell.platform.observability import tracing
from bookwell.platform.observability.logging import redact
from bookwell.platform.observability.metrics import JOB_DURATION
from bookwell.platform.observability.metrics import JOBS

if TYPE_CHECKING:
    from bookwell.platform.messaging.jobs.app import Jobs

log = structlog.get_logger("bookwell.jobs")

_HEADER = "bookwell_"  # request context travels in task headers named bookwell_<field>
_MAX_ERROR = 2000


class Job(Task):
    """The base of every Bookwell task: request context in every log line, retries, dead letters."""

    jobs: Jobs  # set on the subclass each Jobs instance makes
    max_retries = None  # attempts are counted here, against settings.job_max_attempts
    acks_late = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        job = {"task": self.name, "task_id": request.id, "attempt": request.retries + 1, **self.log_fields(list(args))}
        context = self._request_context()
        if traced := tracing.current_traceparent():  # the job's own span (tracing on), in the request's trace
            context = dataclasses.replace(context, traceparent=traced)
        with bound(context), structlog.contextvars.bound_contextvars(**job):
            started = perf_counter()
            outcome = "retry"  # a Retry raised by the job itself, or by `_failed`
            try:
                result = self.run(*args, **kwargs)
                outcome = "done"
            except Retry:
                raise
            except Exception as error:  # noqa: BLE001 - every failure is counted, retried or dead-lettered
                outcome = self._failed(error, list(args), kwargs)
                return None
            finally:
                seconds = perf_counter() - started
                JOBS.labels(self.name, outcome).inc()
                JOB_DURATION.labels(self.name).observe(seconds)
            # The job's one line when it succeeds (Celery's own "received" and "succeeded" are off:
            # `Jobs.run_worker`); a failure has its own lines.
            log.info("job_done", duration_ms=round(seconds * 1000, 3))
            return result

    def log_fields(self, args: list[Any]) -> dict[str, Any]:
        """Hook: what of the job's arguments goes in each of its log lines (no secrets; nothing by default)."""
        return {}

    def _failed(self, error: Exception, args: list[Any], kwargs: dict[str, Any]) -> str:
        """Record a failed attempt, then retry (raises Retry) or dead-letter it (returns "dead")."""
        settings = self.jobs.settings
        attempt = self.request.retries + 1
        final = attempt >= settings.job_max_attempts
        delay = None if final else backoff_delay(attempt, settings.job_backoff_base_s, settings.job_backoff_cap_s)
        now = utcnow()
        message = redact(f"{type(error).__name__}: {error}")[:_MAX_ERROR]
        try:
            self._record_failure(attempt, message, now, delay, args=args, kwargs=kwargs)
        except Exception:
            pause = backoff_delay(attempt, settings.job_backoff_base_s, settings.job_backoff_cap_s)
            log.exception("job_failure_not_recorded", retry_in_s=round(pause, 3), error=message)
            raise self.retry(args=args, kwargs=kwargs, countdown=self.jobs.countdown(pause), exc=error) from None
        if delay is None:
            log.error("job_dead_lettered", attempts=attempt, error=message, exc_info=error)
            return "dead"
        log.warning("job_failed_will_retry", retry_in_s=round(delay, 3), error=message, exc_info=error)
        raise self.retry(args=args, kwargs=kwargs, countdown=self.jobs.countdown(delay), exc=error)

    def _record_failure(
        self, attempt: int, message: str, now: datetime, delay: float | None, *, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        """One transaction: the attempt's row, and on the last attempt the dead letter."""
        with self.jobs.database.engine.begin() as connection:
            connection.execute(
                job_failures.insert().values(
                    id=new_id("jf"),
                    task_id=self.request.id,
                    task=self.name,
                    attempt=attempt,
                    error=message,
                    failed_at=now,
                    retry_in_s=delay,
                )
            )
            if delay is None:
                first = connection.execute(
                    select(func.min(job_failures.c.failed_at)).where(job_failures.c.task_id == self.request.id)
                ).scalar_one()
                connection.execute(
                    dead_letters.insert().values(
                        id=new_id("dl"),
                        task_id=self.request.id,
                        task=self.name,
                        args=args,
                        kwargs=kwargs,
                        headers=self._context_headers(),
                        last_error=message,
                        attempts=attempt,
                        first_failed_at=first,
                        last_failed_at=now,
                    )
                )
            self.attempt_failed(connection, args, None if delay is None else now + timedelta(seconds=delay))

    def _request_context(self) -> RequestContext:
        """The context of the request that caused this job, from its headers."""
        return RequestContext.from_carried({key: getattr(self.request, _HEADER + key, None) for key in CARRIED})

    def _context_headers(self) -> dict[str, str]:
        return headers_for(self._request_context())

    def attempt_failed(self, connection: Connection, args: list[Any], next_attempt_at: datetime | None) -> None:
        """Hook, in the transaction that records the failure: the next attempt's time, or None when dead."""

    def replaying(self, connection: Connection, args: list[Any]) -> None:
        """Hook, in the transaction that marks a dead letter replayed."""


class DeliverJob(Job):
    """`deliver(event_id, handler)` keeps its inbox row in step: a retry moves it, a dead letter marks it."""

    def log_fields(self, args: list[Any]) -> dict[str, Any]:
        # Never raises: a job with arguments it cannot take fails in `run`, where failures are recorded.
        return dict(zip(("event_id", "handler"), args, strict=False)) if len(args) == 2 else {}

    def attempt_failed(self, connection: Connection, args: list[Any], next_attempt_at: datetime | None) -> None:
        delivery = Delivery(*args)
        if next_attempt_at is None:
            move(connection, delivery, due_at=utcnow(), status=DEAD, was=PENDING, sent_at=None)
        else:
            # The retry's job is sent after this commits; until a worker runs it, re-drive counts it
            # as never sent once it is `stall_after_s` past its time.
            move(connection, delivery, due_at=next_attempt_at, status=PENDING, was=PENDING, sent_at=None)

    def replaying(self, connection: Connection, args: list[Any]) -> None:
        # The replay's job is sent before this transaction commits (`Jobs.replay`).
        now = utcnow()
        move(connection, Delivery(*args), due_at=now, status=PENDING, was=DEAD, sent_at=now)


def headers_for(context: RequestContext) -> dict[str, str]:
    """Task headers for a request context's id and trace (those it has)."""
    return {_HEADER + key: value for key, value in context.carried().items()}
