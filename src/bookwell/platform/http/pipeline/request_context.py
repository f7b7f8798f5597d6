"""Stage: the request context. Accepts or makes the request id, continues or starts the W3C trace,
makes both current for everything below (kernel `RequestContext`), and echoes `X-Request-ID` (with
the headers stages below set for every answer, `Exchange.headers`)."""

from __future__ import annotations

import re
import secrets
import uuid

from flask import Response
from flask import current_app
from flask import request

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.context import bound
from bookwell.platform.observability import tracing

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def request_span(offered: str) -> str:
    """W3C trace context for this request: a new span in the caller's trace, or a new trace.

    It travels with the request's events (outbox row, job, JetStream headers), so one trace id
    ties a request to everything it caused.
    """
    span = secrets.token_hex(8)
    if _TRACEPARENT.match(offered) and offered[3:35] != "0" * 32:
        return f"00-{offered[3:35]}-{span}-{offered[-2:]}"
    return f"00-{secrets.token_hex(16)}-{span}-01"


def request_context(exchange: Exchange, proceed: Proceed) -> Response:
    """Run the rest of the request inside its context, and name the request id on the answer."""
    offered = request.headers.get("X-Request-ID", "")
    context = RequestContext(
        request_id=offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex,
        # The server span's when tracing is on (sampled or not), else one of our own in the caller's trace.
        traceparent=tracing.current_traceparent() or request_span(request.headers.get("traceparent", "")),
    )
    with bound(context):
        try:
            response = proceed(exchange)
        except Exception as error:  # noqa: BLE001 - the error stage itself failed: Flask's last resort, still ours
            response = current_app.make_response(current_app.handle_exception(error))
    response.headers.update(exchange.headers)
    response.headers["X-Request-ID"] = str(context.request_id)
    return response
