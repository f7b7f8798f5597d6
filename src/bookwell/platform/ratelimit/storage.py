"""Where the counters live: Redis when a URL names one, else the application's database (ADR 0022).

Both are `limits` storages, so `limits`' fixed-window strategy counts on either. The database one
is shared by every Gunicorn worker and process, unlike `limits`' in-memory storage, which would
multiply every quota by the number of processes.
"""

from __future__ import annotations

import time
from datetime import datetime
from datetime import timedelta
from typing import cast

import redis
from limits.storage import RedisStorage
from limits.storage import Storage
from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from bookwell.platform.db import Database
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import metadata
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.errors import Busy
from bookwell.platform.kernel.errors import Unavailable
from bookwell.settings import Settings

# A rate limit must not make a request wait on a storage that is down: one short try, then fail open.
REDIS_TIMEOUT_S = 0.25
REDIS_KEY_PREFIX = "bookwell"  # keys: bookwell:ratelimit/<policy>/<key>/<quota>/<window>/second

rate_limit_counters = Table(
    "rate_limit_counters",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("count", Integer, nullable=False),
)


class SqlStorage(Storage):
    """`limits` counters in `rate_limit_counters`: one row per key and window, counted by an atomic upsert.

    Built from the process's `Database`, not from a URL (so no storage scheme is registered): it
    shares the application's engine and pool. The time is the application's clock.
    """

    STORAGE_SCHEME = None

    def __init__(self, database: Database) -> None:
        super().__init__(wrap_exceptions=True)
        self.database = database

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        """What a database that is down or locked raises; `limits` wraps them in `StorageError`."""
        return (SQLAlchemyError, Busy, Unavailable)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add `amount` to `key`'s count and return the new count; a window that ended starts again at `amount`.

        One statement, so concurrent requests in any process each see a distinct count: PostgreSQL
        locks the conflicting row, SQLite has one writer at a time.
        """
        now = utcnow()
        insert = pg_insert if self.database.dialect == "postgresql" else sqlite_insert
        new = insert(rate_limit_counters).values(key=key, expires_at=now + timedelta(seconds=expiry), count=amount)
        ended = rate_limit_counters.c.expires_at <= now
        statement = new.on_conflict_do_update(
            index_elements=[rate_limit_counters.c.key],
            set_={
                "count": case((ended, new.excluded["count"]), else_=rate_limit_counters.c.count + amount),
                "expires_at": case((ended, new.excluded.expires_at), else_=rate_limit_counters.c.expires_at),
            },
        ).returning(rate_limit_counters.c.count)
        with self.database.engine.begin() as connection:
            return int(connection.execute(statement).scalar_one())

    def get(self, key: str) -> int:
        """`key`'s count in its current window (0 when it has none)."""
        query = select(rate_limit_counters.c.count).where(
            rate_limit_counters.c.key == key, rate_limit_counters.c.expires_at > utcnow()
        )
        with self.database.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def get_expiry(self, key: str) -> float:
        """When `key`'s window ends, in seconds since the epoch (now when it has none)."""
        query = select(rate_limit_counters.c.expires_at).where(rate_limit_counters.c.key == key)
        with self.database.engine.connect() as connection:
            expires_at: datetime | None = connection.execute(query).scalar()
        return max(time.time(), expires_at.timestamp() if expires_at else 0.0)

    def check(self) -> bool:
        """Whether the database answers."""
        return self.database.ping()

    def reset(self) -> int:
        """Forget every counter; returns how many there were."""
        with self.database.engine.begin() as connection:
            return int(connection.execute(delete(rate_limit_counters)).rowcount)

    def clear(self, key: str) -> None:
        """Forget `key`'s counter."""
        with self.database.engine.begin() as connection:
            connection.execute(delete(rate_limit_counters).where(rate_limit_counters.c.key == key))


class _RedisStorage(RedisStorage):
    """`limits`' Redis storage, reading the window's end to the millisecond (`TTL` rounds to whole seconds)."""

    def get_expiry(self, key: str) -> float:
        """When `key`'s window ends, in seconds since the epoch (now when it has none)."""
        connection = cast(redis.Redis, self.get_connection(True))
        milliseconds = int(connection.pttl(self.prefixed_key(key)))
        return time.time() + max(milliseconds, 0) / 1000


def purge_expired(database: Database, now: datetime) -> int:
    """Delete the counters of windows that ended by `now` (a scheduled job calls it); returns how many."""
    with database.engine.begin() as connection:
        result = connection.execute(delete(rate_limit_counters).where(rate_limit_counters.c.expires_at <= now))
        return int(result.rowcount)


def storage_for(settings: Settings, database: Database) -> Storage:
    """Redis at `rate_limit_storage_url` when it is set, else the database's `SqlStorage`."""
    url = settings.rate_limit_storage_url
    if not url:
        return SqlStorage(database)
    # No retries and short timeouts: a Redis that is down costs each request at most a quarter second.
    pool = redis.ConnectionPool.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    )
    return _RedisStorage(url, connection_pool=pool, key_prefix=REDIS_KEY_PREFIX, wrap_exceptions=True)
