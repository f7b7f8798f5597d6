"""The one retry delay every retrying part uses: full jitter over a doubling, capped window."""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 30  # beyond this the window is the cap anyway; keeps 2**n small


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): uniform in [0, min(cap, base·2^(attempt-1))].

    That is full jitter: the window doubles with each attempt, so the expected wait grows, and the
    randomness spreads work that failed together (a dependency that was down) instead of retrying
    it in lockstep. Single waits may shrink from one attempt to the next; the window never does.
    """
    window = min(cap_s, base_s * 2 ** min(max(attempt, 1) - 1, _MAX_DOUBLINGS))
    return (rng or random).uniform(0, window)
