"""The request context: who asked, and which request and trace this work belongs to.

One typed value per unit of work (an HTTP request, a job, a relay pass), held in a context
variable, so it follows the work across threads that copy their context and never leaks into the
next request. The outbox stamps it on every event, jobs carry it in their headers and bind it
again in the worker, outbound clients send its `traceparent`, and logging adds it to every line.
Nothing here knows about Flask, Celery or structlog: they read and set it through this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import replace

from bookwell.platform.kernel.principal import Principal

CARRIED = ("request_id", "traceparent")  # the fields that travel with the work it causes


@dataclass(frozen=True)
class RequestContext:
    """The current request's id, its W3C trace context, and, once authenticated, its caller."""

    request_id: str | None = None
    traceparent: str | None = None
    principal: Principal | None = None

    @property
    def organization_id(self) -> str | None:
        """The caller's organization, when there is a caller."""
        return None if self.principal is None else self.principal.organization_id

    def carried(self) -> dict[str, str]:
        """The fields that travel with jobs and events, those that are set: `{"request_id": ..., ...}`."""
        return {name: value for name in CARRIED if (value := getattr(self, name))}

    @classmethod
    def from_carried(cls, fields: Mapping[str, object]) -> RequestContext:
        """The context that `carried()` produced (unknown or empty fields ignored)."""
        request_id, traceparent = (str(fields[name]) if fields.get(name) else None for name in CARRIED)
        return cls(request_id=request_id, traceparent=traceparent)


_NONE = RequestContext()
_CURRENT: ContextVar[RequestContext] = ContextVar("bookwell_request_context", default=_NONE)


def current() -> RequestContext:
    """The context of the work running now (an empty one outside any)."""
    return _CURRENT.get()


@contextmanager
def bound(context: RequestContext) -> Iterator[RequestContext]:
    """Make `context` current for the block; whatever was current before comes back after it."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def authenticated(principal: Principal) -> RequestContext:
    """Record the caller in the current context, until the enclosing `bound` block ends (outside
    one there is nothing to end it, and the caller would stay with the thread: refused)."""
    now = _CURRENT.get()
    if now is _NONE:
        raise RuntimeError("authenticated() outside a bound request context")
    context = replace(now, principal=principal)
    _CURRENT.set(context)
    return context
