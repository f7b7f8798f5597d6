"""The rate limiter: counts requests per (policy, key) in fixed windows, and fails open.

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

from bookwell.platform.db import Database
from bookwell.platform.observability.metrics import observe_rate_limit_rejection
from bookwell.platform.observability.metrics import observe_rate_limit_unavailable
from bookwell.platform.ratelimit.policies import Policy
from bookwell.platform.ratelimit.storage import Count
from bookwell.platform.ratelimit.storage import Counters
from bookwell.platform.ratelimit.storage import CountersUnavailable
from bookwell.platform.ratelimit.storage import counters_for
from bookwell.settings import Settings

WARN_EVERY_S = 5.0

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
        storage: Counters,
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
        keys = [_counter_key(policy, key) for policy, key in limits]
        try:
            if count:
                counts = self.storage.hit(
                    [(key, policy.window_s) for key, (policy, _) in zip(keys, limits, strict=True)]
                )
            else:
                counts = self.storage.look(keys)
        except CountersUnavailable as error:
            self._unavailable(error)
            return ALLOWED_UNCOUNTED
        checked = [self._usage(policy, found, counted=count) for (policy, _), found in zip(limits, counts, strict=True)]
        over = [usage for usage, within in checked if not within]
        for usage in over:
            observe_rate_limit_rejection(usage.policy.name)
        return Decision(
            allowed=not over,
            usages=tuple(usage for usage, _ in checked),
            retry_after_s=max((usage.reset_s for usage in over), default=None),
        )

    def _usage(self, policy: Policy, found: Count, *, counted: bool) -> tuple[Usage, bool]:
        """The policy's usage from its counter, and whether the request is within it. A hit decides by
        the count its own increment returned (a count read afterwards could include a concurrent
        request's); a look, by whether one more request would still fit."""
        within = found.used <= policy.quota if counted else found.used < policy.quota
        left_s = found.ends_at - self._clock()
        # No window running (never hit, or ended): the next hit starts a whole one.
        reset_s = math.ceil(left_s) if left_s > 0 else policy.window_s
        return Usage(policy, remaining=max(0, policy.quota - found.used), reset_s=reset_s), within

    def _unavailable(self, error: CountersUnavailable) -> None:
        observe_rate_limit_unavailable()
        now = time.monotonic()
        with self._warn_lock:
            if now - self._warned_at < self._warn_every_s:
                return
            self._warned_at = now
        cause = error.cause
        log.warning(
            "rate_limit_unavailable",
            storage=type(self.storage).__name__,
            error=f"{type(cause).__name__}: {cause}",
            every_s=self._warn_every_s,
        )


def build_rate_limiter(settings: Settings, database: Database) -> RateLimiter:
    """The process's rate limiter, on the storage the settings name, on or off by `rate_limit_enabled`."""
    return RateLimiter(counters_for(settings, database), enabled=settings.rate_limit_enabled)


def _counter_key(policy: Policy, key: str) -> str:
    """A counter per policy, key and quota: a changed quota (an override) starts a counter of its own."""
    # The names `limits` gave them, so a deploy keeps counting in the windows already running.
    return f"ratelimit/{policy.name}/{key}/{policy.quota}/{policy.window_s}/second"
