"""Jobs benchmark: handler deliveries per second of one worker, beside bare Celery, per broker; and
a 10,000-event backlog drained from the outbox to handled, with the re-drive's duplicates counted.

Run with `make bench` (needs PostgreSQL, Redis and RabbitMQ; see bench/README.md). On each broker
(the embedded one, Redis, RabbitMQ), in interleaved rounds (A/B/C, A/B/C):

- bare Celery: a no-op task (it counts itself in Redis), `celery worker` with Bookwell's Celery
  settings for that broker (threads pool, concurrency 4, prefetch 1, acks late);
- Bookwell, no-op handler: `bookwell worker` running `bookwell.deliver` for events the relay sent,
  each through the inbox (row locked, run, marked done, one transaction);
- Bookwell, a handler that writes a row in the job's transaction.

The jobs are queued before the worker starts; the rate counts from the first job done to the last,
and CPU is the worker process's (user + system) over the same span, per job. Then the drain: 10,000
events written to the outbox, `bookwell relay`, `worker` and `scheduler` started, with re-drive
every 2 s and a stall window of 10 s (so the backlog outlasts it many times over): the time until
every delivery is done, and how many jobs re-drive added (the scheduler's own count) and how many
copies the worker skipped as done (the duplicates that reached it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from kombu import Connection
from relay import scratch_database
from sqlalchemy import func
from sqlalchemy import select

from bookwell.bootstrap import bootstrap
from bookwell.platform.db import Database
from bookwell.platform.kernel.events import Event
from bookwell.platform.messaging.inbox import DONE
from bookwell.platform.messaging.inbox import inbox
from bookwell.platform.messaging.jobs.app import Jobs
from bookwell.platform.messaging.outbox import SqlOutbox
from bookwell.platform.messaging.relay import Relay
from bookwell.platform.observability.logging import configure_logging
from bookwell.settings import Settings

BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(BENCH))
from jobs_parts import EVENT_TYPE  # noqa: E402 - bench/ is not a package
from jobs_parts import NOOP_TASK  # noqa: E402
from jobs_parts import bare_app  # noqa: E402
from jobs_parts import instruments  # noqa: E402
from jobs_parts import rows  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CAP_S = 600  # a measurement that takes longer than this has stopped, not slowed


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def python_path() -> str:
    """`PYTHONPATH` for the processes a benchmark starts: bench/, then whatever this process was given,
    so they import the Bookwell this process imports (`PYTHONPATH=<other checkout>/src` measures that
    checkout)."""
    return os.pathsep.join([str(BENCH), *filter(None, [os.environ.get("PYTHONPATH")])])


def environment(database: Database, broker_url: str, queue: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKWELL_")}
    return env | {
        "BOOKWELL_ENV": "test",
        "BOOKWELL_SECRET_KEY": database.settings.secret_key,
        "BOOKWELL_DATABASE_URL": database.settings.database_url,
        "BOOKWELL_BROKER_URL": broker_url,
        "BOOKWELL_JOB_QUEUE": queue,
        "BOOKWELL_HANDLER_MODULES": "jobs_parts",
        "PYTHONPATH": python_path(),
        **extra,
    }


def write_events(database: Database, count: int) -> None:
    for start in range(0, count, 500):
        with database.engine.begin() as connection:
            recorder = SqlOutbox(connection)
            for n in range(start, min(count, start + 500)):
                recorder.add(Event(EVENT_TYPE, "org_bench", f"res_{n}", {"n": n}))


def clear(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(rows.delete())
        connection.execute(inbox.delete())
        connection.exec_driver_sql("DELETE FROM outbox")


def done_deliveries(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).where(inbox.c.status == DONE)).scalar_one())


def timed(process: subprocess.Popen[bytes], done: Callable[[], int], count: int, log: Path) -> dict[str, float]:
    """Jobs per second and worker CPU per job, from the first job done to the last."""
    started = time.monotonic()
    first_at = first_cpu = None
    first_done = 0
    while True:
        finished = done()
        now = time.monotonic()
        if first_at is None and finished:
            first_at, first_cpu, first_done = now, cpu_s(process.pid), finished
        if finished >= count:
            cpu = cpu_s(process.pid)
            break
        if process.poll() is not None or now - started > CAP_S:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"bench: {finished} of {count} jobs done when the worker stopped or the cap hit\n{tail}")
        time.sleep(0.02)
    assert first_at is not None
    assert first_cpu is not None
    jobs = count - first_done
    span = max(now - first_at, 1e-6)
    return {"per_s": jobs / span, "cpu_ms": (cpu - first_cpu) * 1000 / max(jobs, 1)}


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - Bookwell's and Celery's own programs
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def forget(broker_url: str, queue: str, redis_url: str) -> None:
    """Remove a run's queues (and their Redis keys) from the broker."""
    if broker_url.startswith("filesystem"):
        return
    with Connection(broker_url) as connection:
        channel = connection.default_channel
        for name in (queue, queue + ".periodic"):
            channel.queue_delete(name)
        if broker_url.startswith("amqp"):
            channel.exchange_delete(queue)
    if broker_url.startswith("redis"):
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)


def bare_celery(database: Database, broker_url: str, count: int, work: Path, redis_url: str) -> dict[str, float]:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    key = f"bench-count-{queue}"
    env = environment(database, broker_url, queue, BENCH_COUNTER=key, BENCH_REDIS_URL=redis_url)
    counter = redis.Redis.from_url(redis_url)
    try:
        app = bare_app(Settings(**_settings_of(env)))
        for _ in range(count):
            app.send_task(NOOP_TASK, queue=queue)
        command = [
            *(str(VENV_BIN / "celery"), "-A", "jobs_parts:bare", "worker", "--pool", "threads", "--concurrency"),
            *("4", "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel", "WARNING"),
        ]
        log = work / f"bare-{queue}.log"
        with running(command, env, log) as worker:
            return timed(worker, lambda: int(counter.get(key) or 0), count, log)
    finally:
        counter.delete(key)
        forget(broker_url, queue, redis_url)


def bookwell_worker(
    database: Database, broker_url: str, handler: str, *, count: int, work: Path, redis_url: str
) -> dict[str, float]:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    clear(database)
    env = environment(database, broker_url, queue, BENCH_HANDLER=handler)
    settings = Settings(**_settings_of(env))
    os.environ["BENCH_HANDLER"] = handler
    container = bootstrap(settings, database=database)
    try:
        write_events(database, count)
        relay = Relay(database, container.subscriptions, container.jobs.enqueue, batch_size=500)
        while relay.relay_once():
            pass
        log = work / f"{handler}-{queue}.log"
        with running([str(VENV_BIN / "bookwell"), "worker"], env, log) as worker:
            return timed(worker, lambda: done_deliveries(database), count, log)
    finally:
        os.environ.pop("BENCH_HANDLER", None)
        forget(broker_url, queue, redis_url)


def _settings_of(env: dict[str, str]) -> dict[str, Any]:
    return {
        "env": "test",
        "secret_key": env["BOOKWELL_SECRET_KEY"],
        "database_url": env["BOOKWELL_DATABASE_URL"],
        "broker_url": env["BOOKWELL_BROKER_URL"],
        "job_queue": env["BOOKWELL_JOB_QUEUE"],
        "handler_modules": "jobs_parts",
    }


def drain(database: Database, broker_url: str, count: int, work: Path, redis_url: str) -> dict[str, float]:
    """A backlog of `count` events behind one worker, with the relay and a re-driving scheduler."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    clear(database)
    write_events(database, count)
    env = environment(
        database, broker_url, queue, BENCH_HANDLER="write", BOOKWELL_STALL_AFTER_S="10", BOOKWELL_REDRIVE_EVERY_S="2"
    )
    logs = {name: work / f"drain-{name}-{queue}.log" for name in ("relay", "worker", "scheduler")}
    started = time.monotonic()
    try:
        with (
            running([str(VENV_BIN / "bookwell"), "scheduler"], env, logs["scheduler"]),
            running([str(VENV_BIN / "bookwell"), "relay"], env, logs["relay"]),
            running([str(VENV_BIN / "bookwell"), "worker"], env, logs["worker"]) as worker,
        ):
            while (finished := done_deliveries(database)) < count:
                if worker.poll() is not None or time.monotonic() - started > 1800:
                    raise SystemExit(f"bench: drain stopped at {finished} of {count}")
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            # Copies re-drive sent are behind the last delivery: let the worker reach them.
            settle_until = time.monotonic() + 120
            jobs = bootstrap(Settings(**{**_settings_of(env), "handler_modules": ""}), database=database).jobs
            while queued(jobs) and time.monotonic() < settle_until:
                time.sleep(0.5)
            time.sleep(5)  # and finish the ones it holds
    finally:
        forget(broker_url, queue, redis_url)
    # Re-drive is a scheduled job: the scheduler sends it, the worker runs it and logs what it sent.
    redriven = sum(
        line.get("count", 0) for line in _lines(logs["worker"]) if line.get("event") == "deliveries_redriven"
    )
    skipped = sum(
        1 for line in _lines(logs["worker"]) if line.get("event") == "delivery_skipped" and line.get("status") == DONE
    )
    return {"seconds": elapsed, "per_s": count / elapsed, "redriven": redriven, "skipped_as_done": skipped}


def queued(jobs: Jobs) -> int:
    """Jobs waiting in the job queue (RabbitMQ: ready ones; a passive declare leaves its arguments be)."""
    with jobs.celery.connection_for_read() as connection:
        passive = jobs.settings.broker_url.startswith("amqp")
        _, waiting, _ = connection.default_channel.queue_declare(jobs.settings.job_queue, passive=passive)
    return int(waiting)


def _lines(log: Path) -> Iterator[dict[str, Any]]:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rabbitmq", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per throughput measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of throughput (0: none)")
    parser.add_argument("--drain", type=int, default=10_000, help="events in the backlog drained (0: no drain)")
    parser.add_argument("--brokers", default="filesystem,redis,rabbitmq")
    args = parser.parse_args()
    configure_logging("WARNING")
    with scratch_database(args.postgres) as database, tempfile.TemporaryDirectory(prefix="bookwell-bench-") as folder:
        work = Path(folder)
        with database.engine.begin() as connection:
            instruments.create_all(connection)
        urls = {"filesystem": f"filesystem://{work}/broker", "redis": args.redis, "rabbitmq": args.rabbitmq}
        for broker in args.brokers.split(","):
            url = urls[broker]
            report: dict[str, Any] = {"broker": broker}
            if args.rounds:
                results: dict[str, list[dict[str, float]]] = {"bare": [], "noop": [], "write": []}
                for _ in range(args.rounds):
                    results["bare"].append(bare_celery(database, url, args.jobs, work, args.redis))
                    results["noop"].append(
                        bookwell_worker(database, url, "noop", count=args.jobs, work=work, redis_url=args.redis)
                    )
                    results["write"].append(
                        bookwell_worker(database, url, "write", count=args.jobs, work=work, redis_url=args.redis)
                    )
                for kind, runs in results.items():
                    report[kind] = {
                        "per_s": round(statistics.median(r["per_s"] for r in runs), 1),
                        "cpu_ms": round(statistics.median(r["cpu_ms"] for r in runs), 2),
                    }
                report["noop_vs_bare"] = round(report["noop"]["per_s"] / report["bare"]["per_s"], 3)
            if args.drain:
                report["drain"] = drain(database, url, args.drain, work, args.redis)
            print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
