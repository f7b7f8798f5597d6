"""The one way to read the time, so tests can pin it."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix, as every response writes time."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
