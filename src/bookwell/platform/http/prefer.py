"""`Prefer: wait=N` (RFC 7240): answer once the outcome is final, or after N seconds, whichever is first.

A view that can wait attaches a `refresh` to its response (`wait_for_final`); the binding calls
`settle` after the request's transaction committed (waiting inside it would hold the very writes
the outcome depends on). The answer says `Preference-Applied: wait=N`. Preferences the server does
not know, or cannot parse, are ignored, as RFC 7240 asks; a wait over the maximum is cut to it,
and while MAX_WAITING requests of the process already wait, a new one is answered at once.
An idempotent replay answers what the first request committed, without waiting again.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from flask import Response
from flask import request

MAX_WAIT_S = 10
MAX_WAITING = 4  # requests of one process waiting at once; more would starve the thread pool
_POLL_S = 0.1
_waiting = threading.BoundedSemaphore(MAX_WAITING)
_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d{1,6})\"?(?=$|[,;\s])", re.IGNORECASE)
_ATTRIBUTE = "bookwell_refresh"


def requested_wait() -> int | None:
    """The seconds `Prefer: wait=N` asks for (at most MAX_WAIT_S), or None when it asks for none."""
    match = _WAIT.search(request.headers.get("Prefer", ""))
    return None if match is None else min(int(match.group(1)), MAX_WAIT_S)


def wait_for_final(response: Response, seconds: int, refresh: Callable[[], Response | None]) -> Response:
    """Mark `response` to be replaced by `refresh()`'s answer once that is not None (polled until
    `seconds` pass after the commit); `refresh` returns None while the outcome is not final."""
    setattr(response, _ATTRIBUTE, (seconds, refresh))
    return response


def settle(response: Response) -> Response:
    """Apply a marked response's wait; any other response is returned as it is."""
    marked: tuple[int, Callable[[], Response | None]] | None = getattr(response, _ATTRIBUTE, None)
    if marked is None:
        return response
    seconds, refresh = marked
    if not _waiting.acquire(blocking=False):
        return response  # too many waiting already: the preference is not applied (RFC 7240 allows it)
    try:
        deadline = time.monotonic() + seconds
        final = refresh()
        while final is None and time.monotonic() < deadline:
            time.sleep(_POLL_S)
            final = refresh()
    finally:
        _waiting.release()
    answer = response if final is None else final
    answer.headers["Preference-Applied"] = f"wait={seconds}"
    return answer
