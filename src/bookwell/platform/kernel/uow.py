"""The unit-of-work port: one transaction, entered with `with`, made permanent only by `commit()`."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol
from typing import Self


class UnitOfWork(Protocol):
    """What every context's unit of work offers; each context adds its repositories."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None:
        """Make everything done in this unit of work permanent, at once."""
        ...
