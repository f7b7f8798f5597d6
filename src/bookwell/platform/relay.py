"""The relay: moves committed outbox rows to JetStream and to internal subscribers, then marks them sent.

One pass (`relay_once`) is one transaction:
1. claim up to `batch_size` unsent rows in `seq` order (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
   relays share the work; SQLite allows one relay, see `single_relay_lock`), keeping only rows with
   no earlier unsent row of the same aggregate held elsewhere: per aggregate, commit order;
2. publish them to JetStream and wait for every acknowledgement (`Nats-Msg-Id` = event id, so a
   row published again after a crash is dropped by the stream's duplicate window);
3. write a pending inbox row per subscribed handler;
4. stamp positions (serialized to commit, see `outbox`) and `sent_at`; commit;
5. enqueue a job per inbox row. A job lost here (a crash, a broker down) leaves its inbox row
   pending, and the scheduler re-drives it.
A failure before the commit rolls everything back: the rows stay unsent and the next pass retries.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
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

from bookwell.platform.db import Database
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.outbox import NOTIFY_CHANNEL
from bookwell.platform.outbox import LoggedEvent
from bookwell.platform.outbox import logged_event
from bookwell.platform.outbox import outbox
from bookwell.platform.subscriptions import Delivery
from bookwell.platform.subscriptions import Subscriptions
from bookwell.platform.subscriptions import record_deliveries

log = structlog.get_logger("bookwell.relay")
_POSITION_LOCK = 0x626F6F6B77656C6C  # pg_advisory_xact_lock key ("bookwell"): one position stamper at a time


class Publisher(Protocol):
    """Where events go outside Bookwell (JetStream); `publish` returns once every event is acknowledged."""

    def publish(self, events: Sequence[Outgoing]) -> None: ...


@dataclass(frozen=True)
class Outgoing:
    """An event on its way out, with the id and trace context of the request that wrote it."""

    event: LoggedEvent
    request_id: str | None
    traceparent: str | None

    @property
    def headers(self) -> dict[str, str]:
        """The request context as message headers (for JetStream and for jobs)."""
        headers = {}
        if self.request_id:
            headers["request_id"] = self.request_id
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        return headers


Enqueue = Callable[[Delivery, dict[str, str]], None]


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
    ) -> None:
        self.database = database
        self.subscriptions = subscriptions
        self.enqueue = enqueue
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.stopping = threading.Event()

    def relay_once(self) -> int:
        """Deliver one batch; the number of events it delivered (0 when nothing was waiting)."""
        with self.database.engine.connect() as connection:
            connection.begin()
            claimed = self._claim(connection)
            if not claimed:
                return 0
            if self.publisher is not None:
                self.publisher.publish(claimed)
            now = utcnow()
            deliveries = [
                (Delivery(item.event.id, name), item.headers)
                for item in claimed
                for name in self.subscriptions.handlers_for(item.event.type)
            ]
            record_deliveries(connection, [delivery for delivery, _ in deliveries], now)
            self._mark_sent(connection, [item.event.id for item in claimed], now)
            connection.commit()
        for delivery, headers in deliveries:
            try:
                self.enqueue(delivery, headers)
            except Exception:
                log.warning("enqueue_failed", event_id=delivery.event_id, handler=delivery.handler, exc_info=True)
        log.debug("relayed", events=len(claimed), jobs=len(deliveries))
        return len(claimed)

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
        ready = [Outgoing(logged_event(row), row.request_id, row.traceparent) for row in rows if row.seq in ready_seqs]
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
        with self._wakeups() as wait:
            while not self.stopping.is_set():
                try:
                    delivered = self.relay_once()
                    failures = 0
                except Exception:
                    failures += 1
                    pause = random.uniform(0, min(30.0, self.poll_interval_s * 2**failures))  # noqa: S311
                    log.exception("relay_pass_failed", failures=failures, retry_in_s=round(pause, 3))
                    self.stopping.wait(pause)
                    continue
                if delivered < self.batch_size:
                    wait()

    @contextmanager
    def _wakeups(self) -> Iterator[Callable[[], None]]:
        """A function that waits for the next reason to look at the outbox."""
        if self.database.dialect != "postgresql":

            def sleep() -> None:
                self.stopping.wait(self.poll_interval_s)

            yield sleep
            return
        url = self.database.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")

            def wait() -> None:
                # Any notification, or the poll interval: whichever comes first.
                for _ in listener.notifies(timeout=self.poll_interval_s, stop_after=1):
                    pass

            yield wait


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
