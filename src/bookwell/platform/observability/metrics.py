"""Prometheus metrics: the RED signals of every route (rate, errors, duration), labelled by route
template, and the rate limits' refusals and lapses (labels bounded: no ids).

Under Gunicorn every worker is a process of its own, so when `PROMETHEUS_MULTIPROC_DIR` is set
(src/bookwell/gunicorn_conf.py sets it) samples go to files there and `/metrics` merges all workers'.
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

RATE_LIMIT_REJECTIONS = Counter(
    "bookwell_rate_limit_rejections_total",
    "Requests refused for being over a rate-limit policy, by policy.",
    ["policy"],
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "bookwell_rate_limit_unavailable_total",
    "Rate-limit decisions that failed open because the counters' storage did not answer.",
)


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered request; unmatched paths share one label so cardinality stays bounded."""
    label = route or "unmatched"
    REQUESTS.labels(method, label, str(status)).inc()
    DURATION.labels(method, label).observe(seconds)


def observe_rate_limit_rejection(policy: str) -> None:
    """Count one request refused by `policy`."""
    RATE_LIMIT_REJECTIONS.labels(policy).inc()


def observe_rate_limit_unavailable() -> None:
    """Count one decision made without the counters (served uncounted)."""
    RATE_LIMIT_UNAVAILABLE.inc()


def exposition() -> tuple[bytes, str]:
    """The metrics of this process, or of every worker when running multi-process."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
