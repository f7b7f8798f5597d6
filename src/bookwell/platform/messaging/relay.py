"""The relay: moves committed outbox rows to JetStream and to internal subscribers, then marks them sent.

One pass (`relay_once`) is one transaction on PostgreSQL:
1. claim up to `batch_size` unsent rows in `seq` order (`FOR UPDATE SKIP LOCKED`, so relays share
   the work), keeping only rows whose earlier unsent rows of the same aggregate are all in the
   batch: per aggregate, commit order;
2. publish them to JetStream and wait for every acknowledgement (`Nats-Msg-Id` = event id, so a
   row published again after a crash is dropped by the stream's duplicate window);
3. write a pending inbox row per subscribed handler;
4. stamp positions (serialized to commit, see `outbox`) and `sent_at`; commit;
5. enqueue a job per inbox row, then stamp `sent_at` on the rows the broker accepted. A job lost
   here (a crash, a broker down) leaves its inbox row pending and unsent, and the scheduler
   re-drives it; a job sent but not yet stamped (a crash in between) is sent once more.
A failure before the commit rolls everything back: the rows stay unsent and the next pass retries.
SQLite allows one relay (`single_relay_lock`), which claims in a read transaction and takes the
database's single writer lock only for steps 3-4, never while JetStream answers.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Protocol

import psycopg
import structlog
from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.engine import make_url

from bookwell.platform.db import READONLY_OPTION
from bookwell.platform.db import Database
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.retry import backoff_delay
from bookwell.platform.messaging.inbox import Delivery
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.inbox import mark_sent
from bookwell.platform.messaging.inbox import record_deliveries
from bookwell.platform.messaging.outbox import NOTIFY_CHANNEL
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.platform.messaging.outbox import logged_event
from bookwell.platform.messaging.outbox import outbox
from bookwell.platform.observability import tracing
from bookwell.platform.observability.metrics import EVENTS_RELAYED

log = structlog.get_logger("bookwell.relay")
_MAX_PAUSE_S = 30.0  # the longest a failing relay waits before its next pass
_POSITION_LOCK = 0x626F6F6B77656C6C  # pg_advisory_xact_lock key ("bookwell"): one position stamper at a time


class Publisher(Protocol):
    """Where events go outside Bookwell (JetStream); `publish` returns once every event is acknowledged."""

    def publish(self, events: Sequence[Outgoing]) -> None: ...


@dataclass(frozen=True)
class Outgoing:
    """An event on its way out, with the id and trace context of the request that wrote it."""

    event: LoggedEvent
    context: RequestContext


Enqueue = Callable[[Delivery, RequestContext], None]
Job = tuple[Delivery, RequestContext]


class Relay:
    """Delivers the outbox: see the module's docstring for one pass."""

    def __init__(
        self,
        database: Database,
        subscriptions: Subscriptions,
        enqueue: Enqueue,
        publisher: Publisher | None = None,
        *,
        batch_size: int = 100,
        poll_interval_s: float = 0.5,
        meter: Callable[[LoggedEvent], None] = lambda _event: None,
    ) -> None:
        self.database = database
        self.subscriptions = subscriptions
        self.enqueue = enqueue
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.meter = meter  # counts each delivered event in the business metrics (`Registry.meter`)
        self.stopping = threading.Event()

    def relay_once(self) -> int:
        """Deliver one batch; the number of events it delivered (0 when nothing was waiting)."""
        if self.database.dialect == "sqlite":
            deliveries = self._pass_without_holding_the_writer_lock()
        else:
            deliveries = self._pass_in_one_transaction()
        if deliveries is None:
            return 0
        claimed, jobs = deliveries
        for item in claimed:
            EVENTS_RELAYED.labels(item.event.type).inc()
            self._meter(item.event)
        sent = []
        for delivery, context in jobs:
            try:
                self.enqueue(delivery, context)
                sent.append(delivery)
            except Exception:
                log.warning("enqueue_failed", event_id=delivery.event_id, handler=delivery.handler, exc_info=True)
        if sent:
            try:
                with self.database.engine.begin() as connection:
                    mark_sent(connection, sent, utcnow())
            except Exception:  # the events are delivered; unstamped jobs only cost a re-drive's copy
                log.warning("mark_sent_failed", jobs=len(sent), exc_info=True)
        log.debug("relayed", events=len(claimed), jobs=len(jobs))
        return len(claimed)

    def _meter(self, event: LoggedEvent) -> None:
        try:
            self.meter(event)
        except Exception:  # a metric is never worth a delivery
            log.warning("meter_failed", event_id=event.id, type=event.type, exc_info=True)

    def _pass_in_one_transaction(self) -> tuple[list[Outgoing], list[Job]] | None:
        """PostgreSQL: the claimed rows stay locked (other relays skip them) until the pass commits."""
        with self.database.engine.connect() as connection:
            connection.begin()
            claimed = self._claim(connection)
            if not claimed:
                return None
            self._publish(claimed)
            jobs = self._record(connection, claimed)
            connection.commit()
        return claimed, jobs

    def _pass_without_holding_the_writer_lock(self) -> tuple[list[Outgoing], list[Job]] | None:
        """SQLite: read, publish, then write; one relay only (`single_relay_lock`), so nothing else
        claims these rows, and SQLite's single writer lock is not held while JetStream answers."""
        with self.database.engine.connect().execution_options(**{READONLY_OPTION: True}) as connection:
            connection.begin()
            claimed = self._claim(connection)
        if not claimed:
            return None
        self._publish(claimed)
        with self.database.engine.connect() as connection:
            connection.begin()
            jobs = self._record(connection, claimed)
            connection.commit()
        return claimed, jobs

    def _publish(self, claimed: list[Outgoing]) -> None:
        # Linked to every request whose events it carries on (to JetStream when there is one, to the inbox always).
        with tracing.linked("bookwell.relay publish", [item.context.traceparent for item in claimed]):
            if self.publisher is not None:
                self.publisher.publish(claimed)

    def _record(self, connection: Connection, claimed: list[Outgoing]) -> list[Job]:
        """Write the inbox rows and mark the events sent; the jobs to send once this commits."""
        now = utcnow()
        jobs = [
            (Delivery(item.event.id, name), item.context)
            for item in claimed
            for name in self.subscriptions.handlers_for(item.event.type)
        ]
        record_deliveries(connection, [delivery for delivery, _ in jobs], now)
        self._mark_sent(connection, [item.event.id for item in claimed], now)
        return jobs

    def _claim(self, connection: Connection) -> list[Outgoing]:
        query = (
            select(outbox)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.seq)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        rows = connection.execute(query).all()
        if not rows:
            return []
        # Per aggregate, commit order: a row goes only if every earlier unsent row of its aggregate
        # is in this batch too (not held by another relay, not past the limit); the rest wait.
        claimed = {row.seq: row for row in rows}
        unsent = connection.execute(
            select(outbox.c.aggregate_id, outbox.c.seq)
            .where(
                outbox.c.sent_at.is_(None),
                outbox.c.aggregate_id.in_({row.aggregate_id for row in rows}),
                outbox.c.seq <= max(claimed),
            )
            .order_by(outbox.c.seq)
        ).all()
        blocked: set[str] = set()
        ready_seqs: set[int] = set()
        for aggregate_id, seq in unsent:
            if aggregate_id in blocked:
                continue
            if seq in claimed:
                ready_seqs.add(seq)
            else:
                blocked.add(aggregate_id)
        ready = [
            Outgoing(logged_event(row), RequestContext(row.request_id, row.traceparent))
            for row in rows
            if row.seq in ready_seqs
        ]
        return ready

    def _mark_sent(self, connection: Connection, event_ids: list[str], now: datetime) -> None:
        if connection.dialect.name == "postgresql":
            # Held to commit: positions become visible in the order they are given.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSITION_LOCK})
        last = connection.execute(select(func.coalesce(func.max(outbox.c.position), 0))).scalar_one()
        connection.execute(
            update(outbox).where(outbox.c.id == bindparam("event_id")).values(position=bindparam("at"), sent_at=now),
            [{"event_id": event_id, "at": last + offset} for offset, event_id in enumerate(event_ids, start=1)],
        )

    def run(self) -> None:
        """Relay until `stopping` is set: drain, then wait for a notification (PostgreSQL) or the poll interval."""
        failures = 0
        waiter = self._waiter()
        try:
            while not self.stopping.is_set():
                try:
                    delivered = self.relay_once()
                    failures = 0
                except Exception:
                    failures += 1
                    pause = backoff_delay(failures + 1, self.poll_interval_s, _MAX_PAUSE_S)
                    log.exception("relay_pass_failed", failures=failures, retry_in_s=round(pause, 3))
                    self.stopping.wait(pause)
                    continue
                if delivered < self.batch_size:
                    waiter.wait()
        finally:
            waiter.close()

    def _waiter(self) -> Poller:
        """What waits for the next reason to look at the outbox: notifications on PostgreSQL, else time."""
        if self.database.dialect != "postgresql":
            return Poller(self.poll_interval_s, self.stopping)
        dsn = self.database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return Listener(dsn, self.poll_interval_s, self.stopping)


class Poller:
    """Waits the poll interval (or until the relay is asked to stop)."""

    def __init__(self, poll_interval_s: float, stopping: threading.Event) -> None:
        self.poll_interval_s = poll_interval_s
        self.stopping = stopping

    def wait(self) -> None:
        self.stopping.wait(self.poll_interval_s)

    def close(self) -> None:
        """Nothing to release."""


class Listener(Poller):
    """Waits for a NOTIFY on the outbox channel, or the poll interval, whichever comes first.

    Never raises: a lost or refused connection is logged, the wait falls back to the poll
    interval, and the next wait connects again (a database restart must not stop the relay).
    """

    def __init__(self, dsn: str, poll_interval_s: float, stopping: threading.Event) -> None:
        super().__init__(poll_interval_s, stopping)
        self._dsn = dsn
        self._connection: psycopg.Connection[Any] | None = None

    def wait(self) -> None:
        try:
            if self._connection is None:
                self._connection = psycopg.connect(self._dsn, autocommit=True, connect_timeout=5)
                self._connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            for _ in self._connection.notifies(timeout=self.poll_interval_s, stop_after=1):
                pass
        except psycopg.Error as error:
            log.warning("relay_listener_lost", error=str(error).splitlines()[0] if str(error) else type(error).__name__)
            self.close()
            super().wait()

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()


@contextmanager
def single_relay_lock(database: Database) -> Iterator[None]:
    """On SQLite, hold a lock file next to the database so that a second relay refuses to start.

    The operating system drops the lock when the process dies, however it dies (kill -9 too).
    """
    if database.dialect != "sqlite":
        yield
        return
    path = Path(make_url(str(database.engine.url)).database or "bookwell.db").with_suffix(".relay.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another relay is running on this SQLite database (it holds {path})") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(descriptor)
