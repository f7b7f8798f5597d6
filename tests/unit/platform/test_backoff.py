"""The retry delay: full jitter over a window that doubles per attempt up to a cap."""

from __future__ import annotations

import random
import statistics

import pytest

from bookwell.platform.kernel.retry import backoff_delay


@pytest.mark.parametrize("attempt", range(1, 12))
def test_every_delay_lies_in_its_window(attempt: int) -> None:
    rng = random.Random(attempt)
    window = min(30.0, 0.5 * 2 ** (attempt - 1))
    delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(2000)]
    assert all(0 <= d <= window for d in delays)
    # Full jitter: spread over the whole window, not bunched at one end.
    assert min(delays) < 0.05 * window
    assert max(delays) > 0.95 * window


def test_the_expected_delay_doubles_until_the_cap_then_holds() -> None:
    rng = random.Random(7)
    means = [statistics.fmean(backoff_delay(n, 1.0, 16.0, rng) for _ in range(4000)) for n in range(1, 8)]
    expected = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # half of min(16, 2^(n-1))
    assert means == pytest.approx(expected, rel=0.06)
