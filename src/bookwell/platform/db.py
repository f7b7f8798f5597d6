"""The database: one engine per process, tables on one MetaData, and the unit of work that owns each transaction."""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import sqlite3
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any
from typing import Self
from typing import TypeVar

import psycopg
from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import Engine
from sqlalchemy import MetaData
from sqlalchemy import NestedTransaction
from sqlalchemy import Select
from sqlalchemy import TypeDecorator
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.pool import QueuePool

from bookwell.platform.kernel.cache import ReadCache
from bookwell.platform.kernel.cache import Scope
from bookwell.platform.kernel.errors import Busy
from bookwell.platform.kernel.errors import Unavailable
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.observability import tracing
from bookwell.platform.observability.metrics import POOL_CAPACITY
from bookwell.platform.observability.metrics import POOL_IN_USE
from bookwell.platform.observability.metrics import POOL_TIMEOUTS
from bookwell.platform.observability.metrics import POOL_WAITING
from bookwell.settings import Settings

T = TypeVar("T")
READONLY_OPTION = "bookwell_readonly"
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired
# Too many clients, admin or crash shutdown, cannot connect now, the database dropped.
_SERVER_GOING_AWAY = frozenset({"53300", "57P01", "57P02", "57P03", "57P05"})
_UNAVAILABLE_EVERY_S = 5.0
PING_AFTER_IDLE_S = 1.0  # a pooled PostgreSQL connection idle this long is pinged before use
_RETURNED_AT = "bookwell_returned_at"
_AMBIENT: contextvars.ContextVar[tuple[Database, Connection, list[Callable[[], None]]] | None] = contextvars.ContextVar(
    "bookwell_ambient_transaction", default=None
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def fetch_page(
    connection: Connection,
    query: Select[Any],
    key: ColumnElement[Any],
    page: PageRequest,
    convert: Callable[[Any], T],
    *,
    newest_first: bool = True,
) -> Page[T]:
    """One keyset page of `query` ordered by `key` (an id, time-sortable, or a number), after `page.after`."""
    if page.after is not None:
        query = query.where(key < page.after if newest_first else key > page.after)
    rows = connection.execute(query.order_by(key.desc() if newest_first else key).limit(page.limit + 1)).all()
    return Page.from_overfetch([convert(row) for row in rows], page)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Database:
    """The process's engine, configured for SQLite (WAL, foreign keys, busy timeout) or PostgreSQL (pool, timeouts)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = _create_engine(settings)
        self._ping_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz")

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @property
    def location(self) -> str:
        """Where the data is (see `location`)."""
        return location(self.settings.database_url)

    def ping(self) -> bool:
        """Whether the database answers `SELECT 1` within the readiness timeout."""
        future = self._ping_pool.submit(self._select_one)
        try:
            return future.result(timeout=self.settings.readyz_timeout_s)
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False

    def _select_one(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    @contextmanager
    def request_transaction(self) -> Iterator[Connection]:
        """One writing transaction that every unit of work opened inside joins (as a savepoint).

        The caller commits it (`connection.commit()`); leaving without a commit rolls it all back.
        Callbacks registered with a unit of work's `after_commit` run once it committed.
        """
        callbacks: list[Callable[[], None]] = []
        with self.engine.connect() as connection:
            connection.begin()
            token = _AMBIENT.set((self, connection, callbacks))
            try:
                yield connection
            finally:
                _AMBIENT.reset(token)
                committed = not connection.in_transaction() and not connection.invalidated
            if committed:
                _run(callbacks)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._ping_pool.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


def location(database_url: str) -> str:
    """Where a database URL's data is, for start-up lines: a SQLite file's absolute path, or the URL
    without its password."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database).resolve()) if url.database not in (None, "", ":memory:") else ":memory:"
    return url.render_as_string(hide_password=True)


class UnsupportedDatabase(ValueError):
    """A database URL of a kind Bookwell does not run on (it runs on SQLite and PostgreSQL)."""


def _create_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(settings)
    elif url.get_backend_name() == "postgresql":
        engine = _postgresql_engine(settings)
    else:
        raise UnsupportedDatabase(f"unsupported database URL {url.render_as_string(hide_password=True)!r}")
    # Traced first: SQLAlchemy calls no `handle_error` listener after one that raises, and the two
    # below raise (as Busy, as Unavailable), so the tracer's own would never end a failed statement's span.
    tracing.instrument_engine(engine)
    event.listen(engine, "handle_error", _lock_timeouts_are_busy)
    event.listen(engine, "handle_error", _lost_databases_are_unavailable)
    _measure_pool(engine)
    return engine


class _MeasuredQueuePool(QueuePool):
    """A QueuePool that keeps the pool's gauges: connections checked out (after each check-out and
    return, when the pool's own count is settled), callers inside a check-out, waits that ran out."""

    _sqla_logger_namespace = "sqlalchemy.pool.impl.QueuePool"  # logs as the pool it is, kept quiet like it

    def _do_get(self) -> ConnectionPoolEntry:
        POOL_WAITING.inc()
        try:
            entry = super()._do_get()
        except PoolTimeout:
            POOL_TIMEOUTS.inc()
            raise
        finally:
            POOL_WAITING.dec()
        POOL_IN_USE.set(self.checkedout())
        return entry

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        POOL_IN_USE.set(self.checkedout())


def _measure_pool(engine: Engine) -> None:
    """The pool's capacity, for its gauges (one engine per process)."""
    pool = engine.pool
    if isinstance(pool, QueuePool):  # not SQLite in memory: one connection, nothing to measure
        POOL_CAPACITY.set(pool.size() + pool._max_overflow)


def _lock_timeouts_are_busy(context: ExceptionContext) -> None:
    """A lock not granted in time is a retryable 409 for the client, not a 500."""
    error = context.original_exception
    if getattr(error, "sqlstate", None) == _LOCK_NOT_AVAILABLE or (
        isinstance(error, sqlite3.OperationalError) and "database is locked" in str(error)
    ):
        raise Busy("Another request holds this object; retry shortly.") from error


def _lost_databases_are_unavailable(context: ExceptionContext) -> None:
    """No connection (refused, dropped, too many clients, the server shutting down) is a 503 the
    client may retry. Its transaction rolled back, unless the connection dropped during the commit
    itself: then the outcome is unknown, which is why a retried POST should carry its Idempotency-Key.
    The cause is logged, at most every few seconds per process."""
    error = context.original_exception
    sqlstate = getattr(error, "sqlstate", None)
    lost = isinstance(error, psycopg.OperationalError) and (sqlstate is None or sqlstate.startswith("08"))
    if context.is_disconnect or lost or sqlstate in _SERVER_GOING_AWAY:
        _say_unavailable(error)
        raise Unavailable("The database cannot be reached; retry shortly.") from error


_unavailable_said_at = [float("-inf")]


def _say_unavailable(error: BaseException) -> None:
    now = time.monotonic()
    if now - _unavailable_said_at[0] >= _UNAVAILABLE_EVERY_S:
        _unavailable_said_at[0] = now
        logging.getLogger("bookwell.db").warning("database_unavailable: %s", " ".join(str(error).split())[:300])


def _postgresql_engine(settings: Settings) -> Engine:
    engine = create_engine(
        make_url(settings.database_url).set(drivername="postgresql+psycopg"),
        hide_parameters=True,  # a database error's message must not carry customer data into the logs
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        poolclass=_MeasuredQueuePool,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "options": (
                f"-c statement_timeout={settings.db_statement_timeout_ms} -c lock_timeout={settings.db_lock_timeout_ms}"
            ),
            "application_name": "bookwell",
        },
    )
    event.listen(engine, "checkin", _note_return)

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        """A pooled connection idle for `PING_AFTER_IDLE_S` or more is pinged before use (one
        `SELECT 1`); a dead one is replaced, with every connection pooled before it, and the request
        never sees it. One in use a moment ago is used as it is: pinging on every check-out
        (`pool_pre_ping`) cost a round trip per transaction. A connection the server dropped within
        that moment fails its first statement as a 503 (`_lost_databases_are_unavailable`), and the
        pool replaces every connection older than it then."""
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_S:
            return  # new (just connected), or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except psycopg.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):  # type: ignore[arg-type]  # psycopg.Error is the DBAPI's
                raise InvalidatePoolError(f"pooled connection lost: {type(error).__name__}") from error
            raise

    return engine


def _note_return(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_RETURNED_AT] = time.monotonic()


def _sqlite_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    in_memory = url.database in (None, "", ":memory:")
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
            "check_same_thread": False,
        },
        # A file's pool is a QueuePool, measured; one in memory keeps SQLAlchemy's single connection.
        **({} if in_memory else {"poolclass": _MeasuredQueuePool}),
    )
    busy_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "do_connect")
    def _make_directory(_dialect: Any, _record: Any, _args: Any, _kwargs: Any) -> None:
        # SQLite creates the file but not its folder; doing it here keeps start-up free of I/O.
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "foreign_keys=ON",
            f"busy_timeout={busy_ms}",
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes SQLite's write lock up front: a deferred transaction that upgrades
        # from read to write fails at once (SQLITE_BUSY) instead of waiting its turn.
        # An execution option, not `connection.info`: info lives on the pooled DBAPI connection and
        # would carry one checkout's read-only flag into the next checkout's writes.
        readonly = connection.get_execution_options().get(READONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


class SqlUnitOfWork:
    """One database transaction: entered, used through repositories, then committed or rolled back.

    Repositories never commit; only `commit()` does, and leaving the block without it rolls back.
    A `shared` unit of work is joined by the units of work opened inside it (as savepoints), as a
    request transaction is: a saga step's change and its record commit together.
    """

    def __init__(
        self, database: Database, *, cache: ReadCache | None = None, readonly: bool = False, shared: bool = False
    ) -> None:
        if readonly and shared:
            raise ValueError("a read-only unit of work has nothing to share")
        self.database = database
        self.cache = cache
        self.readonly = readonly
        self.shared = shared
        self._sharing: contextvars.Token[tuple[Database, Connection, list[Callable[[], None]]] | None] | None = None
        self._connection: Connection | None = None
        self._savepoint: NestedTransaction | None = None
        self._after_commit: list[Callable[[], None]] = []
        self._outer_callbacks: list[Callable[[], None]] | None = None
        self._changed: set[Scope] = set()

    @property
    def connection(self) -> Connection:
        """The connection of the open transaction."""
        if self._connection is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._connection

    def __enter__(self) -> Self:
        ambient = _AMBIENT.get()
        self._after_commit = []
        self._outer_callbacks = None
        self._changed = set()
        if ambient is not None and ambient[0] is self.database:
            # Inside a request transaction: a savepoint, so commit and rollback stay this unit's own.
            connection, self._outer_callbacks = ambient[1], ambient[2]
            self._savepoint = connection.begin_nested()
        else:
            connection = self.database.engine.connect().execution_options(**{READONLY_OPTION: self.readonly})
            connection.begin()
            if self.readonly and self.database.dialect == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        self._connection = connection
        self._open_repositories(connection)
        if self.shared and self._savepoint is None:
            self._sharing = _AMBIENT.set((self.database, connection, self._after_commit))
        return self

    def _open_repositories(self, connection: Connection) -> None:
        """Subclasses attach their repositories to the connection here."""

    def commit(self) -> None:
        """Make everything done in this unit of work permanent, at once."""
        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        if self._savepoint is not None:
            self._savepoint.commit()
            # They wait for the enclosing transaction; a savepoint rolled back never hands them on.
            assert self._outer_callbacks is not None
            self._outer_callbacks.extend(self._after_commit)
            self._after_commit.clear()
        else:
            self._stop_sharing()  # a unit of work opened after this in the same block is on its own
            self.connection.commit()
            _run(self._after_commit)

    def _stop_sharing(self) -> None:
        if self._sharing is not None:
            _AMBIENT.reset(self._sharing)
            self._sharing = None

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this work is durable: after this unit's commit, or, inside a request
        transaction, after that one commits. Never if it rolls back. For side effects that must
        not happen for work that did not (sending a job); a failing callback is logged, not raised,
        since the work it follows is already committed."""
        self._after_commit.append(callback)

    def changed(self, scope: Scope) -> None:
        """Tell the cache, once this work commits, that `scope` changed: every process's cached reads
        of it end then, before the request that wrote answers (ADR 0035)."""
        if self.cache is not None and scope not in self._changed:
            self._changed.add(scope)
            self.after_commit(partial(self.cache.changed, scope))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self.connection, None
        savepoint, self._savepoint = self._savepoint, None
        self._stop_sharing()
        if savepoint is not None:
            if savepoint.is_active:
                savepoint.rollback()
            return
        try:
            connection.rollback()  # a no-op after commit()
        finally:
            connection.close()


def _run(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            logging.getLogger("bookwell.db").exception("after_commit callback failed")
    callbacks.clear()
