"""A process of its own that hits one rate limit: `multiprocessing` (spawn) starts it from the tests."""

from __future__ import annotations

from typing import Any

from bookwell.platform.db import Database
from bookwell.platform.ratelimit import Policy
from bookwell.platform.ratelimit import build_rate_limiter
from bookwell.settings import Settings


def hit_many(settings: dict[str, Any], policy: Policy, key: str, hits: int) -> int:
    """Hit `(policy, key)` `hits` times through the storage `settings` name; how many were allowed."""
    loaded = Settings(**settings)
    database = Database(loaded)
    try:
        limiter = build_rate_limiter(loaded, database)
        return sum(limiter.hit((policy, key)).allowed for _ in range(hits))
    finally:
        database.dispose()
