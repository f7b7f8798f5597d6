"""Serving metrics: the API's `/metrics` (every Gunicorn worker's samples merged), each other
process's own port, and readings of stored state taken when scraped.

A process that cannot take its metrics port says so (`metrics_not_served`) and goes on with its
work: delivering events matters more than counting them, and Prometheus's `up` shows the gap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import datetime

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

log = structlog.get_logger("bookwell.metrics")

# A reading of stored state (backlogs, ages), taken at each scrape: the families it yields.
Reading = Callable[[], Iterable[Metric]]

READINGS_FAILED = Counter(
    "bookwell_metrics_readings_failed_total",
    "Scrape-time readings of stored state that failed (their families are missing from that scrape), by reading.",
    ["reading"],
)


def exposition() -> tuple[bytes, str]:
    """The metrics of this process, or of every worker when running multi-process."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class StateReadings:
    """A collector that runs each reading when scraped; one that fails is left out and counted."""

    def __init__(self, readings: Sequence[Reading]) -> None:
        self.readings = list(readings)

    def describe(self) -> list[Metric]:
        return []  # nothing read at registration: the database is asked only when scraped

    def collect(self) -> Iterator[Metric]:
        for read in self.readings:
            try:
                families = list(read())
            except Exception:
                READINGS_FAILED.labels(read.__name__).inc()
                log.warning("metrics_reading_failed", reading=read.__name__, exc_info=True)
                continue
            yield from families


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """One unlabelled gauge, for a reading."""
    return GaugeMetricFamily(name, documentation, value=value)


def age(now: datetime, since: datetime | None) -> float:
    """Seconds from `since` to `now` for a reading's age gauge: 0 when nothing waits, never below 0."""
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def serve(process: str, bind: str, readings: Sequence[Reading] = ()) -> int | None:
    """Serve this process's metrics on `bind` (`HOST:PORT`; empty: not served), with `readings`; the
    port it listens on, or None."""
    if not bind:
        return None
    host, _, port = bind.rpartition(":")
    if readings:
        REGISTRY.register(StateReadings(readings))
    try:
        server, _thread = start_http_server(int(port), addr=host.strip("[]"))
    except OSError as error:
        log.error("metrics_not_served", process=process, bind=bind, error=str(error))
        return None
    listening = int(server.server_port)
    log.info("metrics_served", process=process, url=f"http://{host}:{listening}/metrics")
    return listening
