"""A read-through cache over a store of generations and entries (ADR 0035).

Every scope has a generation token; an entry is stored under the token its reader saw *before* it
loaded from the database, and is served only while the scope's token is still that one. A write
replaces the token after its commit, so a reader that loaded before the commit stored its answer
under a token no later reader sees: no stale read after a successful write, in any process that
shares the store. Concurrent misses of one entry share one load (a flight in each process, and on
Redis a lease between processes). A store that fails is skipped for a second: reads go to the
database, never to an error.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from collections.abc import Hashable
from concurrent.futures import Future
from typing import Protocol
from typing import TypeVar

import structlog

from bookwell.platform.kernel.cache import Fill
from bookwell.platform.kernel.cache import Scope
from bookwell.platform.observability.metrics import CACHE_READS
from bookwell.platform.observability.metrics import CACHE_UNAVAILABLE

log = structlog.get_logger("bookwell.cache")
T = TypeVar("T")
SKIP_AFTER_FAILURE_S = 1.0


class StoreUnavailable(Exception):
    """The store did not answer (or answered something that is not ours)."""


class Store(Protocol):
    def lookup(self, generation_key: str, key: str) -> tuple[bytes, bytes | None]:
        """The scope's current generation token, and the entry's value if one lives under that token."""
        ...

    def put(self, key: str, token: bytes, value: bytes, ttl_s: float) -> None: ...

    def lead(self, key: str, token: bytes) -> bool:
        """Whether this process loads the entry (True) or another one is loading it already."""
        ...

    def wait(self, generation_key: str, key: str, token: bytes) -> bytes | None:
        """The value another process is loading, once stored; None when it gave up or the scope changed."""
        ...

    def done(self, key: str) -> None:
        """This process's load ended (stored or not)."""
        ...

    def bump(self, generation_key: str) -> None:
        """Give the scope a new generation token."""
        ...


class Cache:
    """The `ReadCache` of `bookwell.platform.kernel.cache` over one store."""

    def __init__(self, store: Store, *, max_ttl_s: float) -> None:
        self._store = store
        self._max_ttl_s = max_ttl_s
        self._flights = _Flights()
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._owed: set[str] = set()  # generations whose bump failed: bumped again before the next read

    def read(self, scope: Scope, name: str, load: Callable[[], Fill]) -> bytes:
        generation_key, key = _keys(scope, name)
        if not self._usable():
            CACHE_READS.labels("bypass").inc()
            return load().value
        try:
            token, value = self._store.lookup(generation_key, key)
        except StoreUnavailable as error:
            self._failed(error)
            CACHE_READS.labels("bypass").inc()
            return load().value
        if value is not None:
            CACHE_READS.labels("hit").inc()
            return value
        CACHE_READS.labels("miss").inc()
        return self._flights.run((key, token), lambda: self._fill(generation_key, key, token, load))

    def changed(self, scope: Scope) -> None:
        self._bump({_generation_key(scope)})

    def _fill(self, generation_key: str, key: str, token: bytes, load: Callable[[], Fill]) -> bytes:
        try:
            leading = self._store.lead(key, token)
            if not leading and (shared := self._store.wait(generation_key, key, token)) is not None:
                return shared
        except StoreUnavailable as error:
            self._failed(error)
            return load().value
        try:
            fill = load()
            self._keep(key, token, fill)
        finally:
            if leading:
                self._release(key)
        return fill.value

    def _keep(self, key: str, token: bytes, fill: Fill) -> None:
        ttl_s = min(fill.ttl_s, self._max_ttl_s)
        if ttl_s > 0:
            try:
                self._store.put(key, token, fill.value, ttl_s)
            except StoreUnavailable as error:
                self._failed(error)

    def _release(self, key: str) -> None:
        with contextlib.suppress(StoreUnavailable):  # the lease lapses by itself
            self._store.done(key)

    def _usable(self) -> bool:
        if time.monotonic() < self._skip_until:
            return False
        with self._lock:
            owed, self._owed = self._owed, set()
        return self._bump(owed)

    def _bump(self, generation_keys: set[str]) -> bool:
        """Bump each scope; if the store fails, every one not yet bumped is owed (bumped before a read)."""
        waiting = set(generation_keys)
        try:
            for generation_key in generation_keys:
                self._store.bump(generation_key)
                waiting.discard(generation_key)
        except StoreUnavailable as error:
            with self._lock:
                self._owed.update(waiting)
            self._failed(error)
            return False
        return True

    def _failed(self, error: StoreUnavailable) -> None:
        CACHE_UNAVAILABLE.inc()
        now = time.monotonic()
        with self._lock:
            first = now >= self._skip_until
            self._skip_until = now + SKIP_AFTER_FAILURE_S
        if first:
            log.warning("cache_unavailable", error=str(error.__cause__ or error), skipped_for_s=SKIP_AFTER_FAILURE_S)


class Uncached:
    """The `ReadCache` when caching is off: every read loads, writes announce nothing."""

    def read(self, scope: Scope, name: str, load: Callable[[], Fill]) -> bytes:
        return load().value

    def changed(self, scope: Scope) -> None:
        pass


def _generation_key(scope: Scope) -> str:
    # JSON arrays: no two (organization, subject, name) triples spell the same key, whatever they hold.
    return "g" + json.dumps([scope.organization_id, scope.subject_id], separators=(",", ":"))


def _keys(scope: Scope, name: str) -> tuple[str, str]:
    return _generation_key(scope), "e" + json.dumps(
        [scope.organization_id, scope.subject_id, name], separators=(",", ":")
    )


class _Flights:
    """Concurrent calls for one key in this process run `work` once and share its result or error."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Hashable, Future[bytes]] = {}

    def run(self, key: Hashable, work: Callable[[], bytes]) -> bytes:
        with self._lock:
            running = self._running.get(key)
            if running is None:
                self._running[key] = flight = Future[bytes]()
        if running is not None:
            return running.result()
        try:
            result = work()
        except BaseException as error:
            flight.set_exception(error)
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            with self._lock:
                del self._running[key]
