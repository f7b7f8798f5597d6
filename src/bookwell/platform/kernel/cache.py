"""The read-cache port: what views cache and what writes announce, in pure Python (ADR 0035)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Scope:
    """What one write changes and every cached read of it depends on: one subject (a resource: its
    representation and its availability) of one organization. Entries of other organizations can
    never share a scope, so no tenant's read can be answered with another's entry."""

    organization_id: str
    subject_id: str


@dataclass(frozen=True)
class Fill:
    """A freshly loaded answer and how long it stays true with no write (at most; 0: do not keep it)."""

    value: bytes
    ttl_s: float


class ReadCache(Protocol):
    def read(self, scope: Scope, name: str, load: Callable[[], Fill]) -> bytes:
        """The answer named `name` in `scope`: cached if a live entry exists, else `load()`'s, which
        concurrent misses of the same entry share. An exception from `load` reaches every caller and
        is never cached. When the cache's storage fails, `load()` answers, uncached."""
        ...

    def changed(self, scope: Scope) -> None:
        """Every entry of `scope`, in every process, is stale from now on (called after the commit)."""
        ...
