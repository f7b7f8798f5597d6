"""Stage: log and metrics. One access-log line and the request's RED metrics, for every answer the
stages below give (errors included, rendered by the next stage)."""

from __future__ import annotations

import time

import structlog
from flask import Response
from flask import request

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.kernel.context import current
from bookwell.platform.observability.metrics import IN_FLIGHT
from bookwell.platform.observability.metrics import observe_request

access_log = structlog.get_logger("bookwell.access")


def log_and_measure(exchange: Exchange, proceed: Proceed) -> Response:
    """Time the rest of the request, then count it and log it (route template, never the path)."""
    started = time.perf_counter()
    with IN_FLIGHT.track_inprogress():
        response = proceed(exchange)
    seconds = time.perf_counter() - started
    route = request.url_rule.rule if request.url_rule else None
    observe_request(request.method, route, response.status_code, seconds)
    context = current()
    access_log.info(
        "request",
        method=request.method,
        route=route,
        status=response.status_code,
        duration_ms=round(seconds * 1000, 2),
        request_id=context.request_id,
        organization_id=context.organization_id,
    )
    return response
