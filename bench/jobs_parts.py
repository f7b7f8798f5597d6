"""What `bench/jobs.py`'s worker processes import (`PYTHONPATH=bench`): the handlers Bookwell's
worker runs (`BOOKWELL_HANDLER_MODULES=jobs_parts`, `BENCH_HANDLER=noop|write`) and the bare Celery
app of the baseline (`celery -A jobs_parts:bare worker`), on the same broker and settings."""

from __future__ import annotations

import os

import redis
from celery import Celery
from sqlalchemy import Column
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table

from bookwell.platform.db import Database
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.jobs.config import celery_config
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.settings import Settings

EVENT_TYPE = "resource.updated"  # no context subscribes to it: the benchmark's handler runs alone
NOOP_TASK = "bench.noop"
instruments = MetaData()
rows = Table("bench_rows", instruments, Column("event_id", String(30), primary_key=True))


def register(subscriptions: Subscriptions, database: Database) -> None:
    """One handler, as `BENCH_HANDLER` says: `noop` does nothing, `write` inserts a row in the job's transaction."""
    if os.environ["BENCH_HANDLER"] == "noop":
        subscriptions.subscribe("bench.noop", [EVENT_TYPE], lambda _event: None)
        return

    def write(event: LoggedEvent) -> None:
        with SqlUnitOfWork(database) as uow:
            uow.connection.execute(rows.insert().values(event_id=event.id))
            uow.commit()

    subscriptions.subscribe("bench.write", [EVENT_TYPE], write)


def bare_app(settings: Settings) -> Celery:
    """Bare Celery with Bookwell's Celery settings for the broker (pool, prefetch, acks, queues); its
    no-op task counts itself in Redis (`BENCH_REDIS_URL`, key `BENCH_COUNTER`), the only way a
    separate worker can say it ran."""
    app = Celery("bench", set_as_current=False)
    app.conf.update(celery_config(settings))
    counter = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    key = os.environ.get("BENCH_COUNTER", "bench")

    @app.task(name=NOOP_TASK)
    def noop() -> None:
        counter.incr(key)

    return app


def __getattr__(name: str) -> Celery:
    """`celery -A jobs_parts:bare worker`: the app, built from the worker's environment when asked for."""
    if name == "bare":
        return bare_app(Settings.from_env())
    raise AttributeError(name)
