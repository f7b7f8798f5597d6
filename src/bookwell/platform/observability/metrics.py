"""Prometheus metrics: the RED signals of every route (rate, errors, duration), labelled by route template.

Under Gunicorn every worker is a process of its own, so when `PROMETHEUS_MULTIPROC_DIR` is set
(deploy/gunicorn.conf.py sets it) samples go to files there and `/metrics` merges all workers'.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess

REQUESTS = Counter(
    "bookwell_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "bookwell_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered request; unmatched paths share one label so cardinality stays bounded."""
    label = route or "unmatched"
    REQUESTS.labels(method, label, str(status)).inc()
    DURATION.labels(method, label).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The metrics of this process, or of every worker when running multi-process."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
