"""The Redis client of the request path: short timeouts and no retries, so a Redis that is down
costs a request at most a quarter second and its caller degrades (rate limits fail open, ADR 0022;
cached reads go to the database, ADR 0035)."""

from __future__ import annotations

import redis

TIMEOUT_S = 0.25


def request_path_client(url: str) -> redis.Redis:
    """A client for `url` that gives up after TIMEOUT_S, connecting or reading."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=TIMEOUT_S,
        socket_timeout=TIMEOUT_S,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    )
