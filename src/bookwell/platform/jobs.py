"""Background jobs on Celery: one task base with backoff, jitter and dead letters, and event delivery.

Every task is a `Job`: acks late (a job whose worker dies is delivered again), prefetch 1, and on
an exception it retries after a delay drawn with full jitter from an exponentially growing, capped
window. Each failed attempt is a `job_failures` row; after the last attempt the job becomes a
`dead_letters` row (task, arguments, last error, attempts, first and last failure), never dropped,
until `bookwell jobs dead-letters replay` sends it again.

`deliver` runs one handler for one event under the inbox (see `subscriptions`).
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from celery import Celery
from celery import Task
from celery import signals
from celery.exceptions import Retry
from kombu.entity import Exchange
from kombu.entity import Queue
from sqlalchemy import JSON
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import Float
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bookwell.platform import embedded_broker
from bookwell.platform.db import Database
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import metadata
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.logging import redact
from bookwell.platform.outbox import logged_event
from bookwell.platform.outbox import outbox
from bookwell.platform.subscriptions import DEAD
from bookwell.platform.subscriptions import DONE
from bookwell.platform.subscriptions import PENDING
from bookwell.platform.subscriptions import Delivery
from bookwell.platform.subscriptions import Subscriptions
from bookwell.platform.subscriptions import inbox
from bookwell.platform.subscriptions import mark_sent
from bookwell.platform.subscriptions import move
from bookwell.platform.subscriptions import stalled
from bookwell.settings import Settings

log = structlog.get_logger("bookwell.jobs")
DELIVER = "bookwell.deliver"


def periodic_queue(settings: Settings) -> str:
    """The queue of scheduled jobs: never stuck behind a backlog of deliveries on `job_queue`."""
    return settings.job_queue + ".periodic"


_REDELIVERING_SCHEMES = frozenset({"amqp", "pyamqp"})
_HEADER = "bookwell_"  # request context travels in task headers named bookwell_<field>
_CONTEXT = ("request_id", "traceparent")
_MAX_ERROR = 2000

job_failures = Table(
    "job_failures",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("task", String(200), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", UtcDateTime, nullable=False),
    Column("retry_in_s", Float),  # the drawn delay before the next attempt; NULL for the last one
    Index("ix_job_failures_task_id", "task_id"),
    Index("ix_job_failures_failed_at", "failed_at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("task", String(200), nullable=False),
    Column("args", JSON, nullable=False),
    Column("kwargs", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", UtcDateTime, nullable=False),
    Column("last_failed_at", UtcDateTime, nullable=False),
    Column("replayed_at", UtcDateTime),
    Column("replay_task_id", String(64)),
    Index(
        "ix_dead_letters_waiting",
        "last_failed_at",
        sqlite_where=text("replayed_at IS NULL"),
        postgresql_where=text("replayed_at IS NULL"),
    ),
)


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): uniform in [0, min(cap, base·2^(attempt-1))].

    That is full jitter: the window doubles with each attempt, so the expected wait grows, and the
    randomness spreads jobs that failed together (a dependency that was down) instead of retrying
    them in lockstep. Single waits may shrink from one attempt to the next; the window never does.
    """
    window = min(cap_s, base_s * 2 ** (attempt - 1))
    return (rng or random).uniform(0, window)


@dataclass(frozen=True)
class DeadLetter:
    """A job that failed its last attempt."""

    id: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    last_error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    replayed_at: datetime | None


class Job(Task):
    """The base of every Bookwell task: request context in every log line, retries, dead letters."""

    jobs: Jobs  # set on the subclass each Jobs instance makes
    max_retries = None  # attempts are counted here, against settings.job_max_attempts
    acks_late = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        context = {
            "task": self.name,
            "task_id": request.id,
            "attempt": request.retries + 1,
            **{key: getattr(request, _HEADER + key, None) for key in _CONTEXT},
        }
        with structlog.contextvars.bound_contextvars(**context):
            try:
                return self.run(*args, **kwargs)
            except Retry:
                raise
            except Exception as error:  # noqa: BLE001 - every failure is counted, retried or dead-lettered
                self._failed(error, list(args), kwargs)
                return None

    def _failed(self, error: Exception, args: list[Any], kwargs: dict[str, Any]) -> None:
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
            return
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

    def _context_headers(self) -> dict[str, str]:
        return _headers({key: getattr(self.request, _HEADER + key, None) for key in _CONTEXT})

    def attempt_failed(self, connection: Connection, args: list[Any], next_attempt_at: datetime | None) -> None:
        """Hook, in the transaction that records the failure: the next attempt's time, or None when dead."""

    def replaying(self, connection: Connection, args: list[Any]) -> None:
        """Hook, in the transaction that marks a dead letter replayed."""


class DeliverJob(Job):
    """`deliver(event_id, handler)` keeps its inbox row in step: a retry moves it, a dead letter marks it."""

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


class Jobs:
    """Bookwell's Celery app, with the database and subscriptions its tasks need."""

    def __init__(self, settings: Settings, database: Database, subscriptions: Subscriptions) -> None:
        self.settings = settings
        self.database = database
        self.subscriptions = subscriptions
        self.celery = Celery("bookwell", set_as_current=False)
        self.celery.conf.update(celery_config(settings))
        self.Job: type[Job] = type("BookwellJob", (Job,), {"jobs": self})
        deliver_base: type[Job] = type("BookwellDeliverJob", (DeliverJob,), {"jobs": self})

        @self.celery.task(name=DELIVER, base=deliver_base, shared=False)
        def deliver(event_id: str, handler: str) -> None:
            # A plain function: Celery checks call arguments against its signature, and a bound
            # method's would count `self`.
            self.deliver(event_id, handler)

    def task(self, name: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
        """Register a function as a Job named `name`."""
        # shared=False: a shared task would join every Celery app made later in the process, each
        # with the first app's database (two containers in one process, as in the tests).
        return self.celery.task(name=name, base=self.Job, shared=False, **options)  # type: ignore[no-any-return]

    def deliver(self, event_id: str, handler: str) -> None:
        """Run `handler` for the event unless its inbox row is no longer pending; one transaction."""
        with self.database.request_transaction() as connection:
            status = connection.execute(
                select(inbox.c.status).where(inbox.c.event_id == event_id, inbox.c.handler == handler).with_for_update()
            ).scalar_one_or_none()
            if status != PENDING:
                # Done (a redelivered or re-driven copy), dead (a stale copy), or gone: the event was
                # purged, which happens only once every delivery of it is done.
                log.log(
                    logging.WARNING if status is None else logging.INFO,
                    "delivery_skipped",
                    event_id=event_id,
                    handler=handler,
                    status=status,
                )
                return
            row = connection.execute(select(outbox).where(outbox.c.id == event_id)).one()
            self.subscriptions.handler(handler)(logged_event(row))
            connection.execute(
                update(inbox)
                .where(inbox.c.event_id == event_id, inbox.c.handler == handler)
                .values(status=DONE, completed_at=utcnow())
            )
            connection.commit()
        log.info("delivered", event_id=event_id, handler=handler)

    def enqueue(self, delivery: Delivery, context: dict[str, str]) -> None:
        """Send the job that runs `delivery` (the relay's Enqueue), with its event's request context."""
        self.send(DELIVER, delivery.event_id, delivery.handler, context=context)

    def send(self, task: str, *args: Any, context: Mapping[str, Any] | None = None) -> None:
        """Send a job now, carrying a request context (default: the current one) in its headers."""
        headers = _headers(structlog.contextvars.get_contextvars() if context is None else context)
        self.celery.send_task(task, args=list(args), headers=headers, queue=self.settings.job_queue)

    @property
    def broker_redelivers(self) -> bool:
        """Whether the broker gives a job whose worker died to another worker by itself, promptly:
        RabbitMQ does when the consumer's channel closes. Redis does only after its visibility
        timeout, and only when a worker's restore pass runs and gets kombu's restore lock, which a
        worker killed while holding it keeps for 5 minutes; so on Redis, as on the filesystem
        broker (which hands a message over by deleting its file), re-drive covers sent jobs too."""
        return self.settings.broker_url.split("://", 1)[0] in _REDELIVERING_SCHEMES

    def redrive(self, limit: int = 500) -> int:
        """Send again the deliveries `stall_after_s` past due whose job is lost (`stalled`); the
        number sent. Like the relay: claim and move them due in one short transaction, send with no
        transaction open, then stamp what the broker accepted (a crash in between costs one more
        send, once they are past due again)."""
        now = utcnow()
        grace = timedelta(seconds=self.settings.stall_after_s)
        with self.database.engine.begin() as connection:
            lost = stalled(
                connection, now, grace, limit, broker_redelivers=self.broker_redelivers, held_for=self.broker_holds_for
            )
            for item in lost:
                move(connection, item.delivery, due_at=now, status=PENDING, was=PENDING, sent_at=None)
        sent = []
        for item in lost:
            try:
                self.enqueue(item.delivery, item.context)
                sent.append(item.delivery)
            except Exception:
                log.warning("redrive_send_failed", event_id=item.delivery.event_id, exc_info=True)
        if sent:
            with self.database.engine.begin() as connection:
                mark_sent(connection, sent, utcnow())
        if lost:
            was_sent = sum(item.was_sent for item in lost)
            # never_sent: the relay or a retry died before the broker took the job; sent: the broker
            # does not redeliver (or held it past `broker_holds_for`), and the job may be gone.
            log.warning(
                "deliveries_redriven",
                count=len(sent),
                never_sent=len(lost) - was_sent,
                sent=was_sent,
                failed=len(lost) - len(sent),
                limit=limit,
            )
        return len(sent)

    @property
    def broker_holds_for(self) -> timedelta:
        """How long a broker that redelivers may keep a sent job before it is presumed lost after
        all (dropped past RabbitMQ's delivery limit, lost with a Redis that restarted without its
        data): an hour, or twice Redis's visibility timeout if that is longer."""
        return timedelta(seconds=max(3600.0, 2 * redis_visibility_timeout_s(self.settings)))

    def dead_letters(self, *, include_replayed: bool = False, limit: int = 100) -> Sequence[DeadLetter]:
        """Dead letters, newest first; replayed ones only when asked."""
        query = select(dead_letters).order_by(dead_letters.c.last_failed_at.desc()).limit(limit)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        with self.database.engine.connect() as connection:
            return [
                DeadLetter(
                    row.id,
                    row.task,
                    row.args,
                    row.kwargs,
                    row.last_error,
                    row.attempts,
                    row.first_failed_at,
                    row.last_failed_at,
                    row.replayed_at,
                )
                for row in connection.execute(query)
            ]

    def replay(self, dead_letter_id: str) -> str | None:
        """Send a dead letter's job again (attempts start over); its new task id, or None if there is none to replay."""
        task_id = uuid.uuid4().hex
        with self.database.engine.begin() as connection:
            row = connection.execute(
                select(dead_letters)
                .where(dead_letters.c.id == dead_letter_id, dead_letters.c.replayed_at.is_(None))
                .with_for_update()
            ).one_or_none()
            if row is None:
                return None
            connection.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dead_letter_id)
                .values(replayed_at=utcnow(), replay_task_id=task_id)
            )
            task = self.celery.tasks.get(row.task)
            if isinstance(task, Job):
                task.replaying(connection, list(row.args))
            # Sent before the commit, so a broker that refuses it leaves the dead letter waiting. A
            # job that starts before the commit waits for it on its inbox row (row lock, or SQLite's
            # writer lock) and then sees the delivery pending again.
            self.celery.send_task(
                row.task,
                args=row.args,
                kwargs=row.kwargs,
                headers=row.headers,
                task_id=task_id,
                queue=self.settings.job_queue,  # a replay is one-off work, whatever queue it first came from
            )
        log.info("dead_letter_replayed", dead_letter_id=dead_letter_id, task=row.task, task_id=task_id)
        return task_id

    def countdown(self, delay: float) -> float:
        """The countdown to send for a retry `delay` seconds away. RabbitMQ's delayed delivery (what
        keeps waiting retries out of the worker's prefetch) counts whole seconds: round up, at least 1."""
        return max(1, math.ceil(delay)) if self.settings.broker_url.startswith(("amqp", "pyamqp")) else delay

    def purge_failures(self, before: datetime) -> int:
        """Forget failed attempts, and replayed dead letters, older than `before`; how many attempts."""
        with self.database.engine.begin() as connection:
            connection.execute(delete(dead_letters).where(dead_letters.c.replayed_at < before))
            return connection.execute(delete(job_failures).where(job_failures.c.failed_at < before)).rowcount

    def ping_broker(self) -> bool:
        """Whether the broker accepts a connection within the readiness timeout."""
        try:
            with self.celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=self.settings.readyz_timeout_s)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False

    def run_worker(self) -> None:
        """Consume Bookwell's queue until SIGTERM (warm shutdown: running jobs finish, the rest stay queued)."""
        worker = self.celery.Worker(
            pool_cls="threads",
            concurrency=self.settings.worker_concurrency,
            queues=[self.settings.job_queue, periodic_queue(self.settings)],
            without_gossip=True,
            without_mingle=True,
            loglevel=self.settings.log_level,
            quiet=True,
        )
        worker.start()
        if worker.exitcode:
            raise SystemExit(worker.exitcode)

    def run_scheduler(self, timetable: dict[str, dict[str, Any]]) -> None:
        """Send the scheduled jobs on time until SIGTERM (Celery beat).

        Beat keeps its timetable in memory: after a restart every job is sent once at once, which
        the jobs are built to take (they are idempotent), and there is no state file to manage.
        """
        self.celery.conf.beat_schedule = timetable
        self.celery.Beat(scheduler="celery.beat:Scheduler", loglevel=self.settings.log_level, quiet=True).run()


def _headers(context: Mapping[str, Any]) -> dict[str, str]:
    """Task headers for a request context's id and trace (those it has)."""
    return {_HEADER + key: str(context[key]) for key in _CONTEXT if context.get(key)}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's settings for `settings.broker_url`."""
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": settings.readyz_timeout_s,
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": settings.job_queue,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "enable_utc": True,
        "timezone": "UTC",
    }
    scheme = settings.broker_url.split("://", 1)[0]
    if scheme == "filesystem":
        # The embedded broker (`embedded_broker`): kombu's filesystem transport made safe under
        # concurrent writers; the host is ignored, naming it avoids a warning.
        folder = Path(settings.broker_url.removeprefix("filesystem://") or "var/broker")
        config["broker_url"] = f"{embedded_broker.SCHEME}://localhost//"
        config["broker_transport_options"] = embedded_broker.transport_options(folder)
    elif scheme in {"amqp", "pyamqp"}:
        # Quorum queues behind a topic exchange: what Celery's native delayed delivery needs, so a
        # retry's countdown waits in RabbitMQ, not in the worker's prefetch.
        exchange = Exchange(settings.job_queue, type="topic")
        config["task_queues"] = [
            Queue(name, exchange, routing_key=name, queue_arguments={"x-queue-type": "quorum"})
            for name in (settings.job_queue, periodic_queue(settings))
        ]
        config["task_default_exchange"] = settings.job_queue
        config["task_default_exchange_type"] = "topic"
        config["task_default_routing_key"] = settings.job_queue
    elif scheme in {"redis", "rediss"}:
        # An unacknowledged job (its worker died) returns to the queue after this long, so it must
        # outlast the longest a live worker keeps a job unacknowledged: a retry's countdown (at most
        # job_backoff_cap_s) plus a run (a saga step is bounded by its lease). ADR 0017.
        # kombu looks for such jobs every unacked_restore_interval x unacked_restore_throttle
        # seconds (100 s by its defaults): every 10 s here.
        config["broker_transport_options"] = {
            "visibility_timeout": redis_visibility_timeout_s(settings),
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        }
    return config


def redis_visibility_timeout_s(settings: Settings) -> float:
    """How long Redis waits for an acknowledgement before it gives a job to another worker: twice
    the longest a live worker holds one (countdown plus run), and at least 30 s."""
    return max(30.0, 2 * (settings.job_backoff_cap_s + settings.saga_lease_s))


@signals.setup_logging.connect
def _keep_our_logging(**_kwargs: Any) -> None:
    """Celery configures logging only when no one listens here: Bookwell's JSON logging stays in charge."""
