"""Where the counters live: Redis when a URL names one, else the application's database (ADR 0022).

Both count fixed windows for every key of a request in one round trip (ADR 0029), and both are
shared by every Gunicorn worker and process (an in-process counter would multiply every quota by
the number of processes).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Protocol

import redis
from sqlalchemy import Column
from sqlalchemy import Engine
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from bookwell.platform.db import READONLY_OPTION
from bookwell.platform.db import Database
from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import metadata
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.errors import Busy
from bookwell.platform.kernel.errors import Unavailable
from bookwell.platform.redis_client import request_path_client
from bookwell.settings import Settings

REDIS_KEY_PREFIX = "bookwell"  # keys: bookwell:ratelimit/<policy>/<key>/<quota>/<window>/second

rate_limit_counters = Table(
    "rate_limit_counters",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("count", Integer, nullable=False),
)


@dataclass(frozen=True)
class Count:
    """A counter's state in its window: requests counted, and when the window ends (Unix seconds)."""

    used: int
    ends_at: float


class CountersUnavailable(Exception):
    """The counters' storage did not answer (down, locked past its timeout): the limiter fails open."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class Counters(Protocol):
    """Fixed-window counters shared by every worker and process. Each call is one round trip for
    all the keys it is given (a request's policies), whatever their number."""

    def hit(self, windows: Sequence[tuple[str, int]]) -> list[Count]:
        """Count one request on each `(key, window_s)`; a key with no running window starts one of `window_s`."""
        ...

    def look(self, keys: Sequence[str]) -> list[Count]:
        """Each key's state without counting (0 used, ending now, when no window runs)."""
        ...


class SqlCounters:
    """Counters in `rate_limit_counters`, one row per key and window, in the application's database
    (its engine and pool): a hit is one upsert for all its keys, a look one select. The time is the
    application's clock."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._upserts: dict[int, Any] = {}  # by number of keys: each built (and compiled) once
        # One statement each, on the application's pool. On PostgreSQL in autocommit: the statement is
        # its own transaction, without the round trips of BEGIN and COMMIT. SQLite keeps its
        # transaction: a hit takes the write lock up front (`platform/db.py`), a look does not take it.
        self._for_hit: Engine
        self._for_look: Engine
        if database.dialect == "postgresql":
            self._for_hit = self._for_look = database.engine.execution_options(isolation_level="AUTOCOMMIT")
        else:
            self._for_hit = database.engine
            self._for_look = database.engine.execution_options(**{READONLY_OPTION: True})

    def hit(self, windows: Sequence[tuple[str, int]]) -> list[Count]:
        """One statement, so concurrent requests in any process each see a distinct count:
        PostgreSQL locks each conflicting row (in key order, so two requests never wait on each
        other crosswise), SQLite has one writer at a time. A window that ended starts again here."""
        if not windows:
            return []
        ordered = sorted(windows)
        if any(first[0] == second[0] for first, second in itertools.pairwise(ordered)):
            raise ValueError("one hit counts each key once")  # one statement cannot update a row twice
        now = utcnow()
        values: dict[str, Any] = {"now": now}
        for n, (key, window_s) in enumerate(ordered):
            values[f"key_{n}"] = key
            values[f"ends_{n}"] = now + timedelta(seconds=window_s)
        with self._storage_errors(), self._for_hit.connect() as connection:
            rows = connection.execute(self._upsert(len(ordered)), values)
            counted = {key: Count(used, ends.timestamp()) for key, used, ends in rows}
            connection.commit()
        return [counted[key] for key, _ in windows]

    def look(self, keys: Sequence[str]) -> list[Count]:
        if not keys:
            return []
        now = utcnow()
        with self._storage_errors(), self._for_look.connect() as connection:
            rows = connection.execute(_LOOK_ROWS, {"keys": list(keys), "now": now})
            found = {key: Count(used, ends.timestamp()) for key, used, ends in rows}
        return [found.get(key, Count(0, now.timestamp())) for key in keys]

    def _upsert(self, keys: int) -> Any:
        """The upsert of `keys` counters, with its keys and window ends as parameters `key_<n>`, `ends_<n>`."""
        if (statement := self._upserts.get(keys)) is None:
            insert = pg_insert if self.database.dialect == "postgresql" else sqlite_insert
            ends_type = rate_limit_counters.c.expires_at.type
            rows = [
                {"key": bindparam(f"key_{n}"), "expires_at": bindparam(f"ends_{n}", type_=ends_type), "count": 1}
                for n in range(keys)
            ]
            # One row in the single-row form: SQLAlchemy caches its compiled SQL, not a multi-row one's.
            new = (
                insert(rate_limit_counters).values(**rows[0]) if keys == 1 else insert(rate_limit_counters).values(rows)
            )
            ended = rate_limit_counters.c.expires_at <= bindparam("now", type_=ends_type)
            statement = new.on_conflict_do_update(
                index_elements=[rate_limit_counters.c.key],
                set_={
                    "count": case((ended, new.excluded["count"]), else_=rate_limit_counters.c.count + 1),
                    "expires_at": case((ended, new.excluded.expires_at), else_=rate_limit_counters.c.expires_at),
                },
            ).returning(rate_limit_counters.c.key, rate_limit_counters.c.count, rate_limit_counters.c.expires_at)
            self._upserts[keys] = statement
        return statement

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        try:
            yield
        except (SQLAlchemyError, Busy, Unavailable) as error:
            raise CountersUnavailable(error) from error


_LOOK_ROWS = select(rate_limit_counters.c.key, rate_limit_counters.c.count, rate_limit_counters.c.expires_at).where(
    rate_limit_counters.c.key.in_(bindparam("keys", expanding=True)),
    rate_limit_counters.c.expires_at > bindparam("now", type_=rate_limit_counters.c.expires_at.type),
)

# For each key (KEYS[i], window ARGV[i] in ms): count it, start its window on the first count, and
# answer the count and the milliseconds left. One script: one round trip, and atomic per key.
_HIT = """
local answer = {}
for i, key in ipairs(KEYS) do
  local used = redis.call('INCR', key)
  local left = redis.call('PTTL', key)
  if left < 0 then
    left = tonumber(ARGV[i])
    redis.call('PEXPIRE', key, left)
  end
  answer[#answer + 1] = used
  answer[#answer + 1] = left
end
return answer
"""
_LOOK = """
local answer = {}
for _, key in ipairs(KEYS) do
  answer[#answer + 1] = tonumber(redis.call('GET', key) or '0')
  answer[#answer + 1] = redis.call('PTTL', key)
end
return answer
"""


class RedisCounters:
    """Counters in Redis, keys `bookwell:<key>`, each expiring when its window ends."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._hit = client.register_script(_HIT)
        self._look = client.register_script(_LOOK)

    def hit(self, windows: Sequence[tuple[str, int]]) -> list[Count]:
        keys = [self._key(key) for key, _ in windows]
        return self._counts(self._hit, keys, [window_s * 1000 for _, window_s in windows])

    def look(self, keys: Sequence[str]) -> list[Count]:
        return self._counts(self._look, [self._key(key) for key in keys], [])

    def _counts(self, script: Any, keys: list[str], args: list[int]) -> list[Count]:
        try:
            answer = script(keys=keys, args=args)
            now = time.time()
            pairs = zip(answer[::2], answer[1::2], strict=True)
            return [Count(int(used), now + max(int(left_ms), 0) / 1000) for used, left_ms in pairs]
        except (redis.RedisError, ValueError, TypeError) as error:  # down, or an answer not ours (a foreign key)
            raise CountersUnavailable(error) from error

    @staticmethod
    def _key(key: str) -> str:
        return f"{REDIS_KEY_PREFIX}:{key}"


def purge_expired(database: Database, now: datetime) -> int:
    """Delete the counters of windows that ended by `now` (a scheduled job calls it); returns how many."""
    with database.engine.begin() as connection:
        result = connection.execute(delete(rate_limit_counters).where(rate_limit_counters.c.expires_at <= now))
        return int(result.rowcount)


def counters_for(settings: Settings, database: Database) -> Counters:
    """Redis at `rate_limit_storage_url` when it is set, else the database's `SqlCounters`."""
    url = settings.rate_limit_storage_url
    if not url:
        return SqlCounters(database)
    return RedisCounters(request_path_client(url))
