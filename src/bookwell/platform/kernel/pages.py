"""Keyset pages: what a list query asks for and what it gets back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    """Up to `limit` items that sort after `after` (an id; newest first means smaller ids)."""

    limit: int
    after: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of items and whether more follow."""

    items: Sequence[T]
    has_more: bool

    @classmethod
    def from_overfetch(cls, rows: Sequence[T], request: PageRequest) -> Page[T]:
        """Build a page from a query that fetched `limit + 1` rows to learn whether more follow."""
        return cls(items=rows[: request.limit], has_more=len(rows) > request.limit)
