"""The rate limiter: counts requests per (policy, key) in fixed windows with `limits`, and fails open.

A hit counts against every policy it names, a refused one too, and is refused when any policy is
over its quota: so one pass of increments decides, and a client that keeps knocking while refused
keeps using the other quotas up as well (ADR 0022).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import Storage

from bookwell.platform.db import Database
from bookwell.platform.observability.metrics import observe_rate_limit_rejection
from bookwell.platform.observability.metrics import observe_rate_limit_unavailable
from bookwell.platform.ratelimit.policies import Policy
from bookwell.platform.ratelimit.storage import storage_for
from bookwell.settings import Settings

WARN_EVERY_S = 5.0
_NAMESPACE = "ratelimit"

log = structlog.get_logger("bookwell.ratelimit")


@dataclass(frozen=True)
class Usage:
    """One policy's state for one key, after a hit or a test."""

    policy: Policy
    remaining: int  # requests left in this window, >= 0
    reset_s: int  # whole seconds until the window ends, >= 1 (rounded up; a whole window when none runs)


@dataclass(frozen=True)
class Decision:
    """Whether a request may go ahead, and every policy's usage (none when the storage did not answer)."""

    allowed: bool
    usages: tuple[Usage, ...]
    retry_after_s: int | None  # when refused: the longest `reset_s` among the policies that are over


ALLOWED_UNCOUNTED = Decision(allowed=True, usages=(), retry_after_s=None)


class RateLimiter:
    """Counts requests against policies; one per process (it holds the storage's connection pool).

    A storage that fails (Redis down, the database locked past its timeout) lets the request through:
    `rate_limit_unavailable` is logged at most every `warn_every_s` seconds and
    `bookwell_rate_limit_unavailable_total` counts every such decision.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        enabled: bool = True,
        warn_every_s: float = WARN_EVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.enabled = enabled
        self._clock = clock
        self._warn_every_s = warn_every_s
        self._warned_at = -math.inf
        self._warn_lock = threading.Lock()

    def hit(self, *limits: tuple[Policy, str]) -> Decision:
        """Count one request against each `(policy, key)`; refused when any of them is now over its quota."""
        return self._decide(limits, count=True)

    def test(self, *limits: tuple[Policy, str]) -> Decision:
        """Look without counting: refused when any `(policy, key)` has no request left in its window."""
        return self._decide(limits, count=False)

    def _decide(self, limits: tuple[tuple[Policy, str], ...], *, count: bool) -> Decision:
        if not self.enabled or not limits:
            return ALLOWED_UNCOUNTED
        try:
            checked = [self._check(policy, key, count=count) for policy, key in limits]
        except StorageError as error:
            self._unavailable(error)
            return ALLOWED_UNCOUNTED
        over = [usage for usage, within in checked if not within]
        for usage in over:
            observe_rate_limit_rejection(usage.policy.name)
        return Decision(
            allowed=not over,
            usages=tuple(usage for usage, _ in checked),
            retry_after_s=max((usage.reset_s for usage in over), default=None),
        )

    def _check(self, policy: Policy, key: str, *, count: bool) -> tuple[Usage, bool]:
        item = RateLimitItemPerSecond(policy.quota, policy.window_s, namespace=_NAMESPACE)
        stored = item.key_for(policy.name, key)
        # The fixed-window strategy's own step (limits' FixedWindowRateLimiter.hit), keeping the count
        # the storage's atomic increment returns: it decides, and what is left follows from it exactly
        # (stats read afterwards could already include a concurrent request's hit).
        if count:
            used = self.storage.incr(stored, item.get_expiry())
            within = used <= policy.quota
        else:
            used = self.storage.get(stored)
            within = used < policy.quota
        left_s = self.storage.get_expiry(stored) - self._clock()
        # No window running (never hit, or ended): the next hit starts a whole one.
        reset_s = math.ceil(left_s) if left_s > 0 else policy.window_s
        return Usage(policy, remaining=max(0, policy.quota - used), reset_s=reset_s), within

    def _unavailable(self, error: StorageError) -> None:
        observe_rate_limit_unavailable()
        now = time.monotonic()
        with self._warn_lock:
            if now - self._warned_at < self._warn_every_s:
                return
            self._warned_at = now
        cause = error.storage_error
        log.warning(
            "rate_limit_unavailable",
            storage=type(self.storage).__name__,
            error=f"{type(cause).__name__}: {cause}",
            every_s=self._warn_every_s,
        )


def build_rate_limiter(settings: Settings, database: Database) -> RateLimiter:
    """The process's rate limiter, on the storage the settings name, on or off by `rate_limit_enabled`."""
    return RateLimiter(storage_for(settings, database), enabled=settings.rate_limit_enabled)
