"""Tracing's switches and its ids in the logs, without a collector (spans from a local SDK provider)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import INVALID_SPAN

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


def test_an_unsampled_request_carries_its_own_trace_on_unsampled() -> None:
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        ids = span.get_span_context()
        carried = tracing.current_traceparent()
    assert carried is not None
    assert carried.startswith(f"00-{ids.trace_id:032x}-{ids.span_id:016x}-")
    assert int(carried[-2:], 16) & 1 == 0  # not sampled: its jobs are not recorded either


def test_statements_are_traced_only_inside_a_span() -> None:
    provider = TracerProvider()
    sql = tracing._ChildSpansOnly(provider.get_tracer("sql"))
    assert sql.start_span("select") is INVALID_SPAN  # a probe's or a poll's statement: no trace of its own
    with provider.get_tracer("test").start_as_current_span("request"):
        inside = sql.start_span("select")
    assert inside.is_recording()
    inside.end()
