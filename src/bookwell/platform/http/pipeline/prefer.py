"""Stage: `Prefer: wait`. A view's answer marked to wait for a final outcome (`http/prefer.py`) is
settled here, after the idempotency stage below has committed the request's transaction."""

from __future__ import annotations

from flask import Response

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.prefer import settle


def apply_wait(exchange: Exchange, proceed: Proceed) -> Response:
    """The answer, once its outcome is final or the wait is over (unmarked answers at once)."""
    return settle(proceed(exchange))
