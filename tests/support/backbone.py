"""The asynchronous backbone as real processes: `bookwell relay|worker|scheduler` with an environment of the test's.

Each test gets its own job queue, JetStream stream and subject prefix, so tests never read each
other's messages, and removes them afterwards. Process output goes to files the failure report shows.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import nats
import redis
from kombu import Connection
from nats.js.api import ConsumerConfig
from nats.js.api import DeliverPolicy
from sqlalchemy import func
from sqlalchemy import select

from bookwell.platform.db import Database
from bookwell.platform.messaging.inbox import inbox
from bookwell.platform.messaging.jobs.records import dead_letters
from bookwell.platform.messaging.outbox import outbox
from tests.conftest import require_service
from tests.support.handlers import instruments
from tests.support.handlers import runs

ROOT = Path(__file__).resolve().parents[2]
READY = {"relay": "relay_started", "worker": "ready.", "scheduler": "beat: Starting"}
BOOKWELL = str(ROOT / ".venv" / "bin" / "bookwell")


@dataclass
class Backbone:
    """Relay, worker and scheduler processes on one database, broker and (optionally) stream.

    Made before anything is started: it skips (or, in CI, fails) the test when its broker or
    NATS does not answer."""

    database: Database
    broker_url: str
    logs: Path
    nats_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: Counter[str] = field(default_factory=Counter)

    @property
    def queue(self) -> str:
        return f"bookwell-test-{self.tag}"

    @property
    def stream(self) -> str:
        return f"BOOKWELL_TEST_{self.tag}"

    @property
    def subject_prefix(self) -> str:
        return f"bookwell-test-{self.tag}.events"

    def __post_init__(self) -> None:
        scheme = self.broker_url.split("://", 1)[0]
        broker = {"redis": "redis", "amqp": "rabbitmq"}.get(scheme)
        require_service(*filter(None, [broker, "nats" if self.nats_url else None]))

    def env(self) -> dict[str, str]:
        settings = self.database.settings
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BOOKWELL_ENV": "test",
            "BOOKWELL_SECRET_KEY": settings.secret_key,
            "BOOKWELL_DATABASE_URL": settings.database_url,
            "BOOKWELL_BROKER_URL": self.broker_url,
            "BOOKWELL_JOB_QUEUE": self.queue,
            "BOOKWELL_HANDLER_MODULES": "tests.support.handlers",
            "BOOKWELL_NATS_STREAM": self.stream,
            "BOOKWELL_NATS_SUBJECT_PREFIX": self.subject_prefix,
            "BOOKWELL_STALL_AFTER_S": "3",
            "BOOKWELL_REDRIVE_EVERY_S": "1",
            "BOOKWELL_LOG_LEVEL": "INFO",
            "BOOKWELL_LOG_FORMAT": "json",  # `metrics_url` reads these lines
            # A free port each, so tests and a `make run` beside them never contend for one.
            "BOOKWELL_RELAY_METRICS_BIND": "127.0.0.1:0",
            "BOOKWELL_WORKER_METRICS_BIND": "127.0.0.1:0",
            "BOOKWELL_SCHEDULER_METRICS_BIND": "127.0.0.1:0",
            **self.extra_env,
        }
        if self.nats_url:
            env["BOOKWELL_NATS_URL"] = self.nats_url
        else:
            env.pop("BOOKWELL_NATS_URL", None)
        return env

    def start(self, name: str) -> None:
        """Start `bookwell <name>` (relay, worker or scheduler) in a process group of its own."""
        self.starts[name] += 1
        log = (self.logs / f"{name}-{self.starts[name]}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [BOOKWELL, name], env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        """Wait until the latest `name` process says it is serving (so a kill lands on real work)."""
        marker = READY[name]
        log = self.logs / f"{name}-{self.starts[name]}.log"
        self.wait_until(lambda: log.exists() and marker in log.read_text(), timeout, f"{name} to be ready")

    def kill(self, name: str, signum: int = signal.SIGKILL, timeout: float = 30) -> int:
        """Signal the process (its whole group for SIGKILL) and wait for it; its exit code."""
        process = self.processes.pop(name)
        if process.poll() is None:
            if signum == signal.SIGKILL:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)
        return process.wait(timeout=timeout)

    def start_all(self) -> None:
        for name in ("relay", "worker", "scheduler"):
            self.start(name)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every process once it is serving (a process still starting has no handler yet)
        and wait: the graceful path."""
        for name in self.processes:
            self.wait_ready(name)
        return {name: self.kill(name, signal.SIGTERM) for name in list(self.processes)}

    def metrics_url(self, name: str, timeout: float = 30) -> str:
        """Where the latest `name` process serves its metrics (its `metrics_served` line says)."""
        log = self.logs / f"{name}-{self.starts[name]}.log"
        found: list[str] = []

        def served() -> bool:
            for line in log.read_text().splitlines() if log.exists() else ():
                if '"metrics_served"' in line:
                    found.append(json.loads(line)["url"])
                    return True
            return False

        self.wait_until(served, timeout, f"{name} to serve its metrics")
        return found[0]

    def logged(self, text: str) -> bool:
        """Whether any process wrote `text` (to its whole log, not the tail `output` shows)."""
        return any(text in path.read_text() for path in self.logs.glob("*.log"))

    def output(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-4000:]}" for path in sorted(self.logs.glob("*.log")))

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited with {process.returncode}\n{self.output()}")
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.output()}")

    def wait_for_drain(
        self, remaining: Callable[[], int], what: str, *, quiet_s: float = 120, cap_s: float = 900
    ) -> None:
        """`wait_for_drain`, failing also when a process exits, with every process's output."""
        wait_for_drain(remaining, what, check=self._all_running, output=self.output, quiet_s=quiet_s, cap_s=cap_s)

    def _all_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}\n{self.output()}")

    def unsettled(self) -> int:
        """Events not sent yet plus deliveries not finished (neither done nor dead)."""
        with self.database.engine.connect() as connection:
            unsent = connection.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar_one()
            pending = connection.execute(select(func.count()).where(inbox.c.status == "pending")).scalar_one()
        return int(unsent + pending)

    def settled(self) -> bool:
        """Every event sent and every delivery finished (done or dead)."""
        return self.unsettled() == 0

    def cleanup(self) -> None:
        """End the processes and remove everything of this test's from the servers it shares with
        other tests and runs: stream, queues, exchange, Redis keys and unacknowledged messages."""
        for name in list(self.processes):
            self.kill(name, signal.SIGKILL)
        if self.nats_url:
            asyncio.run(_delete_stream(self.nats_url, self.stream))
        queues = (self.queue, self.queue + ".periodic")
        if self.broker_url.startswith("amqp"):
            with Connection(self.broker_url) as connection:
                channel = connection.default_channel
                for queue in queues:
                    channel.queue_delete(queue)
                channel.exchange_delete(self.queue)
        elif self.broker_url.startswith("redis"):
            _delete_redis_queues(self.broker_url, queues)

    def stream_messages(self) -> list[tuple[str, dict[str, str]]]:
        """(subject, headers) of every message in the test's stream, read from the start."""
        assert self.nats_url is not None
        return asyncio.run(_read_stream(self.nats_url, self.stream, self.subject_prefix))


def wait_for_drain(
    remaining: Callable[[], int],
    what: str,
    *,
    check: Callable[[], None] = lambda: None,
    output: Callable[[], str] = str,
    quiet_s: float = 120,
    cap_s: float = 900,
) -> None:
    """Wait until `remaining()` (the work still to do) is 0, for as long as the work goes down.

    No guess at how fast this machine is: the allowed time follows the rate measured while
    waiting. It fails when `remaining()` has not gone down for `quiet_s` (work stopped, not a
    slow machine: a busy one still makes progress), or after `cap_s` in all; `check()` runs on
    every look and raises to fail at once (a process died)."""
    started = last_progress = time.monotonic()
    first = lowest = remaining()
    while lowest > 0:
        now = time.monotonic()
        if now - last_progress > quiet_s or now - started > cap_s:
            rate = (first - lowest) / (now - started)
            raise AssertionError(
                f"{what}: {lowest} of {first} still to do after {now - started:.0f}s "
                f"({rate:.1f}/s, none done in the last {now - last_progress:.0f}s)\n{output()}"
            )
        check()
        time.sleep(0.5)
        left = remaining()
        if left < lowest:
            lowest, last_progress = left, time.monotonic()


def create_instruments(database: Database) -> None:
    """The recording handler's table, empty (the PostgreSQL database outlives a test)."""
    instruments.drop_all(database.engine)
    instruments.create_all(database.engine)


def handler_runs(database: Database) -> list[Any]:
    with database.engine.connect() as connection:
        return list(connection.execute(select(runs)).all())


def waiting_dead_letters(database: Database) -> list[Any]:
    with database.engine.connect() as connection:
        return list(connection.execute(select(dead_letters).where(dead_letters.c.replayed_at.is_(None))).all())


def events(database: Database) -> list[Any]:
    with database.engine.connect() as connection:
        return list(connection.execute(select(outbox).order_by(outbox.c.seq)).all())


def _delete_redis_queues(url: str, queues: tuple[str, ...]) -> None:
    """kombu's keys for `queues` (lists, bindings) and their messages in the shared `unacked` hash."""
    client = redis.Redis.from_url(url)
    try:
        keys = [key for queue in queues for key in client.scan_iter(match=f"*{queue}*")]
        if keys:
            client.delete(*keys)
        for tag, raw in client.hscan_iter("unacked"):
            _message, exchange, routing_key = json.loads(raw)
            if exchange in queues or routing_key in queues:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


async def _read_stream(url: str, stream: str, prefix: str) -> list[tuple[str, dict[str, str]]]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        total = (await js.stream_info(stream)).state.messages
        subscription = await js.pull_subscribe(
            f"{prefix}.>", stream=stream, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        messages: list[tuple[str, dict[str, str]]] = []
        while len(messages) < total:
            for message in await subscription.fetch(min(500, total - len(messages)), timeout=5):
                messages.append((message.subject, dict(message.headers or {})))
                await message.ack()
        return messages
    finally:
        await client.close()


async def _delete_stream(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        await client.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await client.close()
