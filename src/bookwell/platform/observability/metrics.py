"""Prometheus metrics: every family Bookwell's processes count, in one place (the names are what the
SLO rules and dashboards in `ops/` read, and a test checks each name they use is served).

Labels are bounded: route templates, task and handler names, event types, outcomes, currencies
(ISO 4217), never an id. Under Gunicorn every worker is a process of its own, so when
`PROMETHEUS_MULTIPROC_DIR` is set (src/bookwell/gunicorn_conf.py sets it) samples go to files there
and `/metrics` merges all workers'; gauges say how they merge (`multiprocess_mode`). The relay,
worker and scheduler are one process each and serve their own (`exporter.py`).
"""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram

# Seconds: fine where requests and jobs end, and the SLO thresholds (0.3 s, 5 s, 60 s) as bounds.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

# --- HTTP (the API) ---
REQUESTS = Counter(
    "bookwell_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "bookwell_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=_LATENCY,
)
IN_FLIGHT = Gauge(
    "bookwell_http_requests_in_flight",
    "Requests being answered now (each holds one of the server's threads).",
    multiprocess_mode="livesum",
)
THREADS = Gauge(
    "bookwell_http_threads",
    "Threads the API's server has to answer requests with, over its live workers.",
    multiprocess_mode="livesum",
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
CACHE_READS = Counter(
    "bookwell_cache_reads_total",
    "Cached reads by outcome: hit, miss (loaded and kept), bypass (the cache's storage was skipped).",
    ["outcome"],
)
CACHE_UNAVAILABLE = Counter(
    "bookwell_cache_unavailable_total",
    "Cache storage calls that failed; reads then go to the database for a second.",
)
IDEMPOTENCY = Counter(
    "bookwell_idempotency_keys_total",
    "Requests with an Idempotency-Key that did not simply run: `replayed` (the stored answer),"
    " `in_use` (409: its first request still runs), `reused` (422: another request's key).",
    ["outcome"],
)

# --- The database pool (every process) ---
POOL_IN_USE = Gauge(
    "bookwell_db_pool_connections_in_use",
    "Database connections checked out of the pool now.",
    multiprocess_mode="livesum",
)
POOL_CAPACITY = Gauge(
    "bookwell_db_pool_connections_max",
    "Database connections the pool may hold at most (size plus overflow).",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "bookwell_db_pool_checkouts_waiting",
    "Callers inside a pool check-out now: waiting for a free connection, or opening a new one.",
    multiprocess_mode="livesum",
)
POOL_TIMEOUTS = Counter(
    "bookwell_db_pool_timeouts_total",
    "Waits for a pooled connection that ran out of time (each a 503).",
)

# --- Events and jobs (relay, worker, scheduler) ---
EVENTS_RELAYED = Counter(
    "bookwell_events_relayed_total",
    "Committed events the relay delivered, by event type.",
    ["type"],
)
JOBS = Counter(
    "bookwell_jobs_total",
    "Job runs, by task and outcome: `done`, `retry` (failed, will run again), `dead` (failed its last"
    " attempt, dead-lettered).",
    ["task", "outcome"],
)
JOB_DURATION = Histogram(
    "bookwell_job_duration_seconds",
    "Time a job ran, by task.",
    ["task"],
    buckets=_LATENCY,
)
EVENT_HANDLING_DELAY = Histogram(
    "bookwell_event_handling_delay_seconds",
    "From an event's commit to the end of its handler's successful run, by handler.",
    ["handler"],
    buckets=_LAG,
)
DELIVERIES_SKIPPED = Counter(
    "bookwell_deliveries_skipped_total",
    "Delivery jobs that found their inbox row no longer pending (a redelivered or re-driven copy), by"
    " what they found: `done`, `dead`, or `gone`.",
    ["found"],
)
REDRIVEN = Counter(
    "bookwell_deliveries_redriven_total",
    "Deliveries the scheduler sent again, by why: `never_sent` (the broker never took the job) or"
    " `sent` (it took it, and no worker ran it).",
    ["reason"],
)
SAGA_DURATION = Histogram(
    "bookwell_saga_duration_seconds",
    "From a saga's start to its end, by saga type and how it ended.",
    ["saga", "outcome"],
    buckets=_LAG,
)

# --- Dependencies (the payment provider, webhook receivers) ---
DEPENDENCY_CALLS = Counter(
    "bookwell_dependency_calls_total",
    "Calls to a dependency, by dependency and outcome (retries included in one call).",
    ["dependency", "outcome"],
)
DEPENDENCY_DURATION = Histogram(
    "bookwell_dependency_call_duration_seconds",
    "Time a call to a dependency took, retries included, by dependency.",
    ["dependency"],
    buckets=_LATENCY,
)
BREAKER_STATE = Gauge(
    "bookwell_circuit_breaker_state",
    "A circuit breaker's state, by dependency: 0 closed, 1 half-open, 2 open.",
    ["dependency"],
    multiprocess_mode="livemax",  # a dead worker's breaker is not the service's
)

WEBHOOK_DELIVERIES = Counter(
    "bookwell_webhook_deliveries_total",
    "Webhook deliveries that ended, by how: `succeeded`, or `dead` (its retries ran out).",
    ["outcome"],
)

# --- Business ---
BOOKINGS = Counter(
    "bookwell_bookings_total",
    "Bookings that reached a status, by status (`confirmed`, `failed`, `expired`, `cancelled`).",
    ["status"],
)
PAYMENT_AMOUNTS = Counter(
    "bookwell_payment_amount_minor_total",
    "Money moved, in the currency's minor units, by `captured` or `refunded` and currency.",
    ["kind", "currency"],
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


def observe_call(dependency: str, outcome: str, seconds: float) -> None:
    """Count one call to a dependency and how long it took."""
    DEPENDENCY_CALLS.labels(dependency, outcome).inc()
    DEPENDENCY_DURATION.labels(dependency).observe(seconds)


_BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


def observe_breaker(dependency: str, state: str) -> None:
    """Note a circuit breaker's new state (pybreaker's names)."""
    BREAKER_STATE.labels(dependency).set(_BREAKER_STATES[state])


def observe_money(kind: str, amount: int, currency: str) -> None:
    """Count money that moved: `captured` or `refunded`, in the currency's minor units."""
    PAYMENT_AMOUNTS.labels(kind, currency).inc(amount)
