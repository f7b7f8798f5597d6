"""Tracing's switches and its ids in the logs, without a collector (spans from a local SDK provider)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.context import bound
from bookwell.platform.observability import tracing
from bookwell.platform.observability.logging import add_request_context

PARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


def test_tracing_is_on_only_when_a_collector_is_named_and_nothing_turns_it_off() -> None:
    assert not tracing.enabled({})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert not tracing.enabled({**on, "OTEL_SDK_DISABLED": "true"})
    assert not tracing.enabled({**on, "OTEL_TRACES_EXPORTER": "none"})


def test_without_a_recording_span_log_lines_carry_the_context_s_trace_and_span_ids() -> None:
    assert tracing.current_traceparent() is None
    with bound(RequestContext(request_id="req-1", traceparent=PARENT)):
        line = add_request_context(None, "info", {"event": "x"})
    assert (line["trace_id"], line["span_id"], line["request_id"]) == ("a" * 32, "b" * 16, "req-1")
    assert "traceparent" not in line


def test_a_recording_span_is_the_traceparent_carried_on_and_the_ids_logged() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span, bound(RequestContext(traceparent=PARENT)):
        ids = span.get_span_context()
        trace_id, span_id = format(ids.trace_id, "032x"), format(ids.span_id, "016x")
        assert str(tracing.current_traceparent()).startswith(f"00-{trace_id}-{span_id}-")  # sampled (and random) flags
        line = add_request_context(None, "info", {"event": "x"})
    assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)


def test_spans_continued_or_linked_are_nothing_while_tracing_is_off() -> None:
    with tracing.continued(PARENT, "enqueue"), tracing.linked("publish", [PARENT, None]):
        assert tracing.current_traceparent() is None
