"""Structured JSON logs: one line per event, with the request's context, and no secrets."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any
from typing import TextIO

import structlog

from bookwell.platform.kernel.context import current
from bookwell.platform.observability import tracing

_SECRET_KEY = re.compile(r"authorization|secret|password|token|api_key|cookie", re.IGNORECASE)
_BEARER = re.compile(r"(?i)\b(bearer\s+)\S+")
_API_KEY = re.compile(r"\bbw_[A-Za-z0-9]+_[A-Za-z0-9_-]+")
_PG_DETAIL = re.compile(r"(?m)^(DETAIL:).*$")  # PostgreSQL's DETAIL repeats row values ("Failing row contains ...")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """`value` with bearer tokens, API keys, URL passwords and PostgreSQL DETAIL lines masked (and,
    in mappings, every field named like a secret); for text that leaves the log pipeline too."""
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(r"\1" + REDACTED + "@", value)
        value = _PG_DETAIL.sub(r"\1 " + REDACTED, value)
        return _API_KEY.sub(REDACTED, _BEARER.sub(r"\1" + REDACTED, value))
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def add_request_context(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Add the current request context's id, organization, and trace and span ids: the current
    span's when tracing is on, else those of the context's `traceparent` (unless the line names its own)."""
    context = current()
    ids = tracing.ids() or _ids(context.traceparent)
    trace_id, span_id = ids if ids else (None, None)
    for key, value in (
        ("request_id", context.request_id),
        ("trace_id", trace_id),
        ("span_id", span_id),
        ("organization_id", context.organization_id),
    ):
        if value is not None:
            event_dict.setdefault(key, value)
    return event_dict


def _ids(traceparent: str | None) -> tuple[str, str] | None:
    """The trace and span ids of a W3C `traceparent` (`00-<trace>-<span>-<flags>`)."""
    return (traceparent[3:35], traceparent[36:52]) if traceparent and len(traceparent) == 55 else None


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask fields named like secrets, and bearer tokens, API keys, URL passwords and PostgreSQL DETAIL lines."""
    for key, value in list(event_dict.items()):
        event_dict[key] = REDACTED if _SECRET_KEY.search(key) else redact(value)
    return event_dict


class _StandardStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` (or `sys.stderr`) is when a line is logged, so redirection works."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    @property
    def stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._name)
        return stream

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """The stream is looked up on every write; there is nothing to set."""


def _renderer(fmt: str) -> Any:
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer()


def configure_logging(level: str = "INFO", stream: str = "stdout", fmt: str = "json") -> None:
    """Send structlog and the standard library's logging (Gunicorn's, Celery's) through one renderer
    on `sys.<stream>`: JSON lines for machines (`fmt="json"`), or aligned text for people (`"console"`)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_request_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks as data, without local variables: locals are where secrets hide.
        structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = _StandardStreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _renderer(fmt),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a log line too, in the same format
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
