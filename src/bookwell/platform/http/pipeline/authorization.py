"""Stage: authorization. The operation's scopes against the caller's: 403 `insufficient_scope` for a
missing one. After the rate limits, so a key that keeps asking for what it may not do is counted too."""

from __future__ import annotations

from flask import Response

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.kernel.context import current


def authorize(exchange: Exchange, proceed: Proceed) -> Response:
    """Let the call through when its caller holds every scope the operation requires."""
    operation, principal = exchange.operation, current().principal
    if operation is not None and operation.scopes is not None and principal is not None:
        missing = operation.scopes - principal.scopes
        if missing:
            needed = " ".join(sorted(operation.scopes))
            raise HttpProblem(
                403,
                "insufficient_scope",
                "Forbidden",
                f"The credential lacks the scope(s) {', '.join(sorted(missing))}.",
                headers={"WWW-Authenticate": f'Bearer realm="bookwell", error="insufficient_scope", scope="{needed}"'},
            )
    return proceed(exchange)
