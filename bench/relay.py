"""Relay benchmark: events per second from PostgreSQL to JetStream, and commit-to-publish lag.

Run with `make bench` (needs PostgreSQL and NATS JetStream; see bench/README.md). Each figure is
measured side by side with its baseline in the same run, on a database and stream made for the run
and dropped after it:

- throughput: a backlog drained with the relay's batches (100) against one event per pass;
- lag at a steady write rate: the relay woken by LISTEN/NOTIFY against the same relay polling
  every 0.5 s (what it falls back to without notifications).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import nats
import psycopg
from alembic import command
from sqlalchemy.engine import make_url

from bookwell.cli import alembic_config
from bookwell.platform.db import Database
from bookwell.platform.kernel.events import Event
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.jetstream import JetStream
from bookwell.platform.messaging.outbox import SqlOutbox
from bookwell.platform.messaging.outbox import outbox
from bookwell.platform.messaging.relay import Outgoing
from bookwell.platform.messaging.relay import Poller
from bookwell.platform.messaging.relay import Relay
from bookwell.platform.observability.logging import configure_logging
from bookwell.settings import Settings


@contextmanager
def empty_database(admin_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the server of `admin_url`, dropped afterwards."""
    name = f"bookwell_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(admin_url: str) -> Iterator[Database]:
    """A new database with Bookwell's schema, dropped afterwards."""
    with empty_database(admin_url) as url:
        settings = Settings(env="test", database_url=url, secret_key="bench-" + "x" * 40, db_pool_size=10)
        command.upgrade(alembic_config(settings), "head")
        database = Database(settings)
        try:
            yield database
        finally:
            database.dispose()


class TimedPublisher:
    """JetStream, noting when each event's publish was acknowledged."""

    def __init__(self, stream: JetStream) -> None:
        self.stream = stream
        self.acked: dict[str, float] = {}

    def publish(self, events: Sequence[Outgoing]) -> None:
        self.stream.publish(events)
        now = time.perf_counter()
        for item in events:
            self.acked[item.event.id] = now


def write_backlog(database: Database, count: int) -> None:
    for start in range(0, count, 500):
        with database.engine.begin() as connection:
            recorder = SqlOutbox(connection)
            for n in range(start, min(count, start + 500)):
                recorder.add(Event("booking.created", "org_bench", f"bkg_{n % 97}", {"n": n}))


def drain_rate(database: Database, publisher: TimedPublisher, batch_size: int, count: int) -> float:
    with database.engine.begin() as connection:
        connection.execute(outbox.delete())
    write_backlog(database, count)
    relay = Relay(database, Subscriptions(), lambda _d, _h: None, publisher, batch_size=batch_size)
    started = time.perf_counter()
    delivered = 0
    while step := relay.relay_once():
        delivered += step
    elapsed = time.perf_counter() - started
    assert delivered == count, (delivered, count)
    return count / elapsed


class PollingRelay(Relay):
    """The baseline: the same relay, deaf to notifications."""

    def _waiter(self) -> Poller:
        return Poller(self.poll_interval_s, self.stopping)


def steady_lag(
    database: Database, publisher: TimedPublisher, relay_type: type[Relay], rate: int, seconds: float
) -> dict[str, float]:
    with database.engine.begin() as connection:
        connection.execute(outbox.delete())
    publisher.acked.clear()
    relay = relay_type(database, Subscriptions(), lambda _d, _h: None, publisher, poll_interval_s=0.5)
    runner = threading.Thread(target=relay.run, daemon=True)
    runner.start()
    time.sleep(0.5)
    committed: dict[str, float] = {}
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for n in range(int(rate * seconds)):
        event = Event("booking.created", "org_bench", f"bkg_{n % 97}", {"n": n})
        with database.engine.begin() as connection:
            SqlOutbox(connection).add(event)
        committed[event.id] = time.perf_counter()
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    deadline = time.perf_counter() + 10
    while len(publisher.acked) < len(committed) and time.perf_counter() < deadline:
        time.sleep(0.05)
    relay.stopping.set()
    runner.join(timeout=10)
    lags = sorted((publisher.acked[i] - committed[i]) * 1000 for i in committed if i in publisher.acked)
    assert len(lags) == len(committed), f"{len(committed) - len(lags)} events not published"
    return {
        "events": len(lags),
        "p50_ms": statistics.median(lags),
        "p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "max_ms": lags[-1],
    }


async def _delete_stream(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=200, help="events per second for the lag runs")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    configure_logging("WARNING", stream="stderr")
    tag = uuid.uuid4().hex[:8]
    stream_name = f"BOOKWELL_BENCH_{tag}"
    stream = JetStream(
        args.nats, stream=stream_name, subject_prefix=f"bookwell-bench-{tag}.events", duplicate_window_s=120
    )
    publisher = TimedPublisher(stream)
    results: dict[str, Any] = {}
    try:
        with scratch_database(args.postgres) as database:
            results["throughput_events_per_s"] = {
                "batch_100": round(drain_rate(database, publisher, 100, args.backlog)),
                "batch_1_baseline": round(drain_rate(database, publisher, 1, args.backlog // 5)),
            }
            results["lag_ms"] = {
                "notify": steady_lag(database, publisher, Relay, args.rate, args.seconds),
                "poll_0.5s_baseline": steady_lag(database, publisher, PollingRelay, args.rate, args.seconds),
            }
    finally:
        stream.close()
        asyncio.run(_delete_stream(args.nats, stream_name))
    throughput = results["throughput_events_per_s"]
    notify, poll = results["lag_ms"]["notify"], results["lag_ms"]["poll_0.5s_baseline"]
    print(json.dumps(results, indent=2, default=lambda v: round(v, 2)))
    print(
        f"throughput: batch 100 = {throughput['batch_100']} ev/s, batch 1 = {throughput['batch_1_baseline']} ev/s "
        f"(x{throughput['batch_100'] / throughput['batch_1_baseline']:.1f})"
    )
    print(
        f"lag at {args.rate} ev/s: notify p50 {notify['p50_ms']:.1f} ms p99 {notify['p99_ms']:.1f} ms; "
        f"poll p50 {poll['p50_ms']:.1f} ms p99 {poll['p99_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
