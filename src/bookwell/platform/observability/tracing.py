"""Tracing with OpenTelemetry: on when the standard `OTEL_EXPORTER_OTLP_*` variables name a
collector, off (the API's no-op tracer, no instrumentation installed) when none does.

Each process calls `start(service, ratio)` once it is the process that does the work: the API in each
Gunicorn worker after the fork (`gunicorn_conf.post_fork`: a batch exporter's thread does not
survive a fork), the relay, worker and scheduler at start. The worker runs Celery's thread pool in
its own process, so there is no `worker_process_init` to wait for. Flask, SQLAlchemy (the engine
`Database` built), Celery (sending and running) and httpx (the provider and webhook clients) are
instrumented. Buffered spans are sent at exit (the SDK's own exit hook). Sampling is
parent-based, with `BOOKWELL_TRACE_SAMPLE_RATIO` for new traces.

The request context (`kernel.context`) stays the one carrier across the outbox: its `traceparent`
is the current span's whenever there is one (sampled or not), so events, job headers, JetStream headers and
outbound calls continue the same trace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = structlog.get_logger("bookwell.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_started: list[str] = []
tracer = trace.get_tracer("bookwell")


def enabled(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the environment names a collector (and does not turn the SDK or the exporter off)."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or environ.get("OTEL_TRACES_EXPORTER") == "none":
        return False
    return any(environ.get(name) for name in _ENDPOINTS)


def start(service: str, sample_ratio: float) -> bool:
    """Install the SDK for this process, exporting to the collector the environment names; whether
    tracing is on. Safe to call again (the first call decides)."""
    if _started or not enabled():
        return bool(_started)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol not in (None, "", "http/protobuf"):
        log.warning("tracing_protocol_unsupported", protocol=protocol, using="http/protobuf")
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or f"bookwell-{service}"})
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument(request_hook=_without_query)
    _started.append(service)
    log.info("tracing_started", service=service, sample_ratio=sample_ratio)
    return True


def instrument_app(app: Any) -> None:
    """Server spans for every request of `app` (when tracing is on)."""
    if enabled():
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
            app, excluded_urls="livez,readyz,metrics", request_hook=_server_without_query
        )


def instrument_engine(engine: Any) -> None:
    """A span for every statement on `engine` (when tracing is on)."""
    if enabled():
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import get_meter

        # The engine's own tracer, not SQLAlchemyInstrumentor: that one refuses SQLAlchemy 2.1 (it
        # declares < 2.1) and patches every `create_engine`, asyncio's too. Its event hooks work on
        # 2.1: tests/integration/platform/test_tracing.py sees the statements' spans.
        usage = get_meter("bookwell.db").create_up_down_counter("db.client.connections.usage")
        sql = _ChildSpansOnly(trace.get_tracer("opentelemetry.instrumentation.sqlalchemy"))
        EngineTracer(sql, engine, usage)  # type: ignore[no-untyped-call]


class _ChildSpansOnly:
    """A tracer whose spans exist only inside another span: a statement run outside any request or
    job (a readiness probe, a relay poll) would otherwise be a trace of its own, every second."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(self, name: str, context: otel_context.Context | None = None, **options: Any) -> trace.Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self._tracer.start_span(name, context, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracer, name)


def _without_query(span: trace.Span, request: Any) -> None:
    """An outbound call's span keeps its URL without the query (a webhook URL's token, say)."""
    if span.is_recording():
        url = str(request.url).split("?", 1)[0]
        span.set_attributes({"http.url": url, "url.full": url})


def _server_without_query(span: trace.Span, environ: dict[str, Any]) -> None:
    """A request's span keeps its path without the query (filters name customers)."""
    if span.is_recording():
        span.set_attributes({"http.target": environ.get("PATH_INFO", ""), "url.query": ""})


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, sampled or not (its flags say which), or None when
    there is none (tracing off): work a request causes inherits the request's sampling decision."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, when there is one (sampled or not)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@contextmanager
def continued(traceparent: str | None, name: str, kind: SpanKind = SpanKind.PRODUCER) -> Iterator[None]:
    """A span `name` in the trace `traceparent` carries (the request that wrote an event), current for the block."""
    if not _started:
        yield
        return
    parent = _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})
    token = otel_context.attach(parent)
    try:
        with tracer.start_as_current_span(name, kind=kind):
            yield
    finally:
        otel_context.detach(token)


@contextmanager
def linked(name: str, traceparents: Sequence[str | None]) -> Iterator[None]:
    """A span `name` of its own trace, linked to each trace context in `traceparents` (a relay pass)."""
    if not _started:
        yield
        return
    links = []
    for traceparent in filter(None, traceparents):
        span_context = trace.get_current_span(_PROPAGATOR.extract({"traceparent": traceparent})).get_span_context()
        if span_context.is_valid:
            links.append(Link(span_context))
    with tracer.start_as_current_span(name, context=otel_context.Context(), kind=SpanKind.PRODUCER, links=links):
        yield
