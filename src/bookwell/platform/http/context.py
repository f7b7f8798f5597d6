"""Per-request context: the request id (accepted or made), its place in every log line, and the access log."""

from __future__ import annotations

import re
import secrets
import time
import uuid

import structlog
from flask import Flask
from flask import Response
from flask import g
from flask import request

from bookwell.platform.observability.metrics import observe_request

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

access_log = structlog.get_logger("bookwell.access")


def _request_span(offered: str) -> str:
    """W3C trace context for this request: a new span in the caller's trace, or a new trace.

    It travels with the request's events (outbox row, job, JetStream headers), so one trace id
    ties a request to everything it caused.
    """
    span = secrets.token_hex(8)
    if _TRACEPARENT.match(offered) and offered[3:35] != "0" * 32:
        return f"00-{offered[3:35]}-{span}-{offered[-2:]}"
    return f"00-{secrets.token_hex(16)}-{span}-01"


def init_app(app: Flask) -> None:
    """Give every request an id, bind it to the log context, echo it, and log and count it when it ends."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        offered = request.headers.get("X-Request-ID", "")
        g.request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        context = {"request_id": g.request_id}
        context["traceparent"] = _request_span(request.headers.get("traceparent", ""))
        structlog.contextvars.bind_contextvars(**context)

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else None
        observe_request(request.method, route, response.status_code, seconds)
        access_log.info(
            "request",
            method=request.method,
            route=route,
            status=response.status_code,
            duration_ms=round(seconds * 1000, 2),
            request_id=request_id,
            organization_id=g.get("organization_id"),
        )
        return response

    @app.teardown_request
    def _clear(_error: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()
