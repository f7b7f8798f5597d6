"""The jobs app, `Jobs`: Celery from settings, one task base with backoff, jitter and dead letters, and event delivery.

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
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any

import amqp
import structlog
from celery import Celery
from celery import Task
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from bookwell.platform.db import Database
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.context import current
from bookwell.platform.messaging.inbox import DONE
from bookwell.platform.messaging.inbox import PENDING
from bookwell.platform.messaging.inbox import Delivery
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.inbox import inbox
from bookwell.platform.messaging.inbox import mark_sent
from bookwell.platform.messaging.inbox import move
from bookwell.platform.messaging.inbox import stalled
from bookwell.platform.messaging.jobs.base import DeliverJob
from bookwell.platform.messaging.jobs.base import Job
from bookwell.platform.messaging.jobs.base import headers_for
from bookwell.platform.messaging.jobs.config import DELIVER
from bookwell.platform.messaging.jobs.config import celery_config
from bookwell.platform.messaging.jobs.config import periodic_queue
from bookwell.platform.messaging.jobs.config import redis_visibility_timeout_s
from bookwell.platform.messaging.jobs.records import DeadLetter
from bookwell.platform.messaging.jobs.records import dead_letters
from bookwell.platform.messaging.jobs.records import job_failures
from bookwell.platform.messaging.outbox import logged_event
from bookwell.platform.messaging.outbox import outbox
from bookwell.platform.observability import tracing
from bookwell.platform.observability.metrics import DELIVERIES_SKIPPED
from bookwell.platform.observability.metrics import EVENT_HANDLING_DELAY
from bookwell.platform.observability.metrics import REDRIVEN
from bookwell.settings import Settings

log = structlog.get_logger("bookwell.jobs")

# A delivery's statements, built once. The claim locks the inbox row (PostgreSQL; SQLite's write
# lock serialises) and reads its event in the same round trip.
_CLAIM = (
    select(inbox.c.status, outbox)
    .select_from(inbox.join(outbox, outbox.c.id == inbox.c.event_id))
    .where(inbox.c.event_id == bindparam("the_event"), inbox.c.handler == bindparam("the_handler"))
    .with_for_update(of=inbox)
)
_DONE = (
    update(inbox)
    .where(inbox.c.event_id == bindparam("the_event"), inbox.c.handler == bindparam("the_handler"))
    .values(status=DONE, completed_at=bindparam("done_at"))
)

_REDELIVERING_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})


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
        keys = {"the_event": event_id, "the_handler": handler}
        with self.database.request_transaction() as connection:
            row = connection.execute(_CLAIM, keys).one_or_none()
            status = None if row is None else row.status
            if row is None or status != PENDING:
                # Done (a redelivered or re-driven copy), dead (a stale copy), or gone: the event was
                # purged, which happens only once every delivery of it is done.
                log.log(
                    logging.WARNING if status is None else logging.INFO,
                    "delivery_skipped",
                    event_id=event_id,
                    handler=handler,
                    status=status,
                )
                DELIVERIES_SKIPPED.labels(status or "gone").inc()
                return
            event = logged_event(row)
            self.subscriptions.handler(handler)(event)
            connection.execute(_DONE, {**keys, "done_at": utcnow()})
            connection.commit()
        EVENT_HANDLING_DELAY.labels(handler).observe((utcnow() - event.created_at).total_seconds())

    def enqueue(self, delivery: Delivery, context: RequestContext) -> None:
        """Send the job that runs `delivery` (the relay's Enqueue), with its event's request context."""
        self.send(DELIVER, delivery.event_id, delivery.handler, context=context)

    def send(self, task: str, *args: Any, context: RequestContext | None = None) -> None:
        """Send a job now, carrying a request context (default: the current one) in its headers; one
        given (an event's, for the relay and re-drive) is continued, so the job joins its trace."""
        if context is None:
            self._send(task, list(args), headers_for(current()))
            return
        with tracing.continued(context.traceparent, f"send {task}"):
            self._send(task, list(args), headers_for(context))

    def _send(self, task: str, args: list[Any], headers: dict[str, str]) -> None:
        self.celery.send_task(task, args=args, headers=headers, queue=self.settings.job_queue)

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
        held = self.broker_redelivers or self.jobs_waiting()
        with self.database.engine.begin() as connection:
            lost = stalled(connection, now, grace, limit, sent_jobs_held=held, held_for=self.broker_holds_for)
            for item in lost:
                move(connection, item.delivery, due_at=now, status=PENDING, was=PENDING, sent_at=None)
        sent = []
        for item in lost:
            try:
                self.enqueue(item.delivery, item.context)
                sent.append(item.delivery)
                REDRIVEN.labels("sent" if item.was_sent else "never_sent").inc()
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

    def jobs_waiting(self) -> bool:
        """Whether the job queue holds jobs no worker has taken yet. While it does, a sent delivery
        past due may be one of them, waiting behind a backlog, so re-drive leaves sent deliveries
        alone even on a broker that does not redeliver; once the queue is empty, a sent delivery
        still pending and not being run was taken by a worker that died. Unknown (the broker does
        not answer) counts as waiting: nothing sent is re-sent on a guess."""
        waiting = self.queue_depth(self.settings.job_queue)
        return waiting is None or waiting > 0

    def queue_depth(self, queue: str) -> int | None:
        """How many jobs wait in `queue` for a worker (taken but unacknowledged ones not counted);
        None when the broker does not answer."""
        try:
            with self.celery.connection_for_read() as connection:
                # Passive on RabbitMQ (a declare must match the queue's own arguments, durable and all);
                # not on Redis, which drops an emptied queue's key, where passive would say "no queue".
                _, waiting, _ = connection.default_channel.queue_declare(queue, passive=self.broker_redelivers)
        except amqp.exceptions.NotFound:
            return 0  # RabbitMQ: no worker has declared it yet, so nothing was sent to it either
        except Exception:
            log.warning("job_queue_size_unknown", queue=queue, exc_info=True)
            return None
        return int(waiting)

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

    def dead_letter_count(self) -> int:
        """How many dead letters wait for an operator (not replayed)."""
        with self.database.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(dead_letters).where(dead_letters.c.replayed_at.is_(None))
                ).scalar_one()
            )

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
            with tracing.continued((row.headers or {}).get("bookwell_traceparent"), f"replay {row.task}"):
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
        # One line per job, Bookwell's (`job_done`, or its failure's): Celery's "received" and
        # "succeeded" lines would triple the logging cost of a delivery. Their warnings stay.
        for name in ("celery.worker.strategy", "celery.app.trace"):
            logging.getLogger(name).setLevel(logging.WARNING)
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
