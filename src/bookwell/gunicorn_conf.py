"""Gunicorn settings for the API process (see docs/adr/0006-serve-with-gunicorn-gthread.md):
`gunicorn --config python:bookwell.gunicorn_conf 'bookwell.app:create_app()'`."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import structlog
from gunicorn import glogging

from bookwell.platform.observability.logging import configure_logging
from bookwell.settings import Settings

# Each worker writes its metrics to files here, so /metrics can merge every worker's samples.
# It must be set before prometheus_client is first imported (the library picks its storage at
# import time), and the workers inherit it; a fresh folder per server start, removed on exit.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bookwell-metrics-"))

# Threads overlap database I/O inside a worker; workers use the cores. Start from 2 x 4 on
# the 2-core reference machine and change it only with load-test numbers.
_settings = Settings.from_env()  # checked once, before any worker starts
if "BOOKWELL_HTTP_BIND" in os.environ:  # else Gunicorn's own default ($PORT, or 127.0.0.1:8000)
    bind = [_settings.http_bind]  # a --bind on the command line replaces it
workers = _settings.web_workers
threads = _settings.web_threads
worker_class = "gthread"
timeout = 30
graceful_timeout = 20  # SIGTERM: finish in-flight requests, then stop
keepalive = 5
accesslog = None  # the app writes one structured line per request itself


class _OneFormat(glogging.Logger):  # type: ignore[misc]  # gunicorn ships no types
    """Gunicorn's own lines (booting, workers, errors) through Bookwell's logging, in its format, on
    stdout like every other line. Gunicorn's own log options (`--error-logfile`, `--log-config`,
    syslog, `--capture-output`) are therefore not used: `BOOKWELL_LOG_LEVEL` and
    `BOOKWELL_LOG_FORMAT` decide, and the process's output is where the logs are."""

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        configure_logging(_settings.log_level, fmt=_settings.log_format)
        self.error_log.setLevel(_settings.log_level)
        for log in (self.error_log, self.access_log):
            log.handlers.clear()
            log.propagate = True


logger_class = _OneFormat
control_socket_disable = True  # one fixed socket path per user would clash between servers


def when_ready(server: Any) -> None:
    """Say where the API and its reference are, once it listens, and where its data is."""
    from bookwell.platform.db import location

    for listener in server.LISTENERS:
        structlog.get_logger("bookwell.api").info(
            "api_ready", url=str(listener), reference=f"{listener}/docs", database=location(_settings.database_url)
        )


def post_fork(_server: Any, _worker: Any) -> None:
    """Start tracing in the worker (when a collector is configured): after the fork, so the span
    exporter's thread is the worker's own."""
    from bookwell.platform.observability import tracing

    tracing.start("api", _settings.trace_sample_ratio)


def post_worker_init(worker: Any) -> None:
    """Gunicorn's own error answers (414, 431, malformed requests) as problem+json, like the app's;
    count its threads in the merged metrics; then say that this worker serves (its app is loaded)."""
    from bookwell.platform.http import server_errors
    from bookwell.platform.observability.metrics import THREADS

    server_errors.install()
    THREADS.set(threads)
    structlog.get_logger("bookwell.api").info("worker_ready", pid=worker.pid)


def child_exit(_server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the merged metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(_server: Any) -> None:
    """Remove the metrics folder this server made."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
