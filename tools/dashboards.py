"""Dashboards as code: Bookwell's Grafana dashboards, built with Grafana's foundation SDK into
`ops/grafana/*.json`.

    python tools/dashboards.py          # write ops/grafana/*.json
    python tools/dashboards.py --check  # exit 1 when the committed files differ from what this builds

Every query reads a family the service exports (tests/integration/platform/test_metrics.py checks
each name against the running processes) and is PromQL promtool parses (tests/ops). Each
dashboard takes its Prometheus data source from the `datasource` variable.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from slo_rules import load as load_slos  # tools/, beside this file

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "ops" / "grafana"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]


def p99(histogram: str, by: str, selector: str = "") -> str:
    return f"histogram_quantile(0.99, sum by (le, {by}) (rate({histogram}_bucket{selector}[{RATE}])))"


def calls(dependency: str) -> str:
    return f'sum by (outcome) (rate(bookwell_dependency_calls_total{{dependency="{dependency}"}}[{RATE}]))'


SERVICE = (
    "Service overview",
    "bookwell-service",
    "Requests by route (rate, errors, duration), the SLOs' error budgets, the server's threads and the database pool.",
    (
        Panel(
            "Requests by route",
            "Answers a second, by route template.",
            "reqps",
            (Query(f"sum by (method, route) (rate(bookwell_http_requests_total[{RATE}]))", "{{method}} {{route}}"),),
        ),
        Panel(
            "Server errors by route",
            "5xx answers a second, by route and status.",
            "reqps",
            (
                Query(
                    f'sum by (route, status) (rate(bookwell_http_requests_total{{status=~"5.."}}[{RATE}]))',
                    "{{route}} {{status}}",
                ),
            ),
        ),
        Panel(
            "Latency p99 by route",
            "99th percentile of the time to answer, by route.",
            "s",
            (Query(p99("bookwell_http_request_duration_seconds", "route"), "{{route}}"),),
        ),
        Panel(
            "SLO error budget burn (1h)",
            "Each SLO's error ratio over the last hour, as a multiple of its budget: above 14.4 with the 5m"
            " window too, the fast-burn alert pages.",
            "none",
            tuple(Query(f"{slo.record('1h')} / {slo.budget}", slo.title) for slo in load_slos()),
        ),
        Panel(
            "Server threads in use",
            "Requests being answered against the threads the API has: at the top, requests queue.",
            "short",
            (
                Query("sum(bookwell_http_requests_in_flight)", "in flight"),
                Query("sum(bookwell_http_threads)", "threads"),
            ),
        ),
        Panel(
            "Database pool",
            "Connections checked out, the most the pool may hold, callers in a check-out (waiting or connecting),"
            " and timeouts a second (each a 503), per process.",
            "short",
            (
                Query("sum by (job, instance) (bookwell_db_pool_connections_in_use)", "in use {{instance}}"),
                Query("sum by (job, instance) (bookwell_db_pool_connections_max)", "max {{instance}}"),
                Query("sum by (job, instance) (bookwell_db_pool_checkouts_waiting)", "waiting {{instance}}"),
                Query(f"sum(rate(bookwell_db_pool_timeouts_total[{RATE}]))", "timeouts"),
            ),
        ),
    ),
)

ASYNC = (
    "Asynchronous work",
    "bookwell-async",
    "The outbox, the inbox, the job queues, jobs, dead letters, re-drive and sagas.",
    (
        Panel(
            "Outbox: oldest unsent event",
            "How long the oldest committed event has waited for the relay."
            " Rising: the relay is behind or failing (runbook outbox-lag-growing).",
            "s",
            (Query("max(bookwell_outbox_oldest_unsent_age_seconds)", "oldest unsent"),),
        ),
        Panel(
            "Outbox: unsent events",
            "Committed events the relay has not delivered.",
            "short",
            (Query("max(bookwell_outbox_unsent_events)", "unsent"),),
        ),
        Panel(
            "Deliveries due and job queues",
            "Handler runs due and not done, and jobs waiting in each broker queue. A deep queue that drains"
            " is a slow backlog; due deliveries with an empty queue are lost jobs, which re-drive sends again.",
            "short",
            (
                Query("max(bookwell_inbox_due_deliveries)", "due deliveries"),
                Query("max by (queue) (bookwell_job_queue_depth)", "queue {{queue}}"),
            ),
        ),
        Panel(
            "Event handling delay p99",
            "From an event's commit to the end of its handler's run, by handler (the event-freshness SLO"
            " counts those over 5 s).",
            "s",
            (Query(p99("bookwell_event_handling_delay_seconds", "handler"), "{{handler}}"),),
        ),
        Panel(
            "Jobs by outcome",
            "Job runs a second, by task and outcome (done, retry, dead).",
            "ops",
            (Query(f"sum by (task, outcome) (rate(bookwell_jobs_total[{RATE}]))", "{{task}} {{outcome}}"),),
        ),
        Panel(
            "Job duration p99",
            "99th percentile of a job's run time, by task.",
            "s",
            (Query(p99("bookwell_job_duration_seconds", "task"), "{{task}}"),),
        ),
        Panel(
            "Dead letters and re-drive",
            "Dead letters waiting for an operator (runbook dead-letters-piling-up), deliveries re-driven a"
            " second by reason, and duplicate deliveries the inbox skipped.",
            "short",
            (
                Query("max(bookwell_dead_letters)", "dead letters"),
                Query(f"sum by (reason) (rate(bookwell_deliveries_redriven_total[{RATE}]))", "re-driven {{reason}}"),
                Query(f"sum by (found) (rate(bookwell_deliveries_skipped_total[{RATE}]))", "skipped {{found}}"),
            ),
        ),
        Panel(
            "Sagas running",
            "Sagas not yet ended, and how long ago the oldest started.",
            "short",
            (
                Query("max(bookwell_sagas_running)", "running"),
                Query("max(bookwell_saga_oldest_running_age_seconds)", "oldest age (s)"),
            ),
        ),
    ),
)

PAYMENTS = (
    "Payments",
    "bookwell-payments",
    "The payment provider's calls and circuit breaker, the charging sagas, bookings and money.",
    (
        Panel(
            "Provider calls by outcome",
            "Calls to the payment provider a second, by outcome (succeeded, declined, unavailable,"
            " breaker_open, ...); runbook payment-provider-down.",
            "ops",
            (Query(calls("payment_provider"), "{{outcome}}"),),
        ),
        Panel(
            "Provider latency p99",
            "99th percentile of a call to the provider, retries included.",
            "s",
            (
                Query(
                    p99("bookwell_dependency_call_duration_seconds", "dependency", '{dependency="payment_provider"}'),
                    "p99",
                ),
            ),
        ),
        Panel(
            "Circuit breaker",
            "The provider's breaker, per worker: 0 closed, 1 half-open, 2 open.",
            "short",
            (
                Query(
                    'max by (instance) (bookwell_circuit_breaker_state{dependency="payment_provider"})', "{{instance}}"
                ),
            ),
        ),
        Panel(
            "Charging saga duration p99",
            "From a priced booking to its saga's end, by outcome (the payment-completion SLO counts those over 60 s).",
            "s",
            (Query(p99("bookwell_saga_duration_seconds", "outcome", '{saga="booking"}'), "{{outcome}}"),),
        ),
        Panel(
            "Bookings by status",
            "Bookings reaching a status a second (confirmed, failed, expired, cancelled).",
            "ops",
            (Query(f"sum by (status) (rate(bookwell_bookings_total[{RATE}]))", "{{status}}"),),
        ),
        Panel(
            "Money captured and refunded",
            "Minor units a second, by kind and currency.",
            "short",
            (
                Query(
                    f"sum by (kind, currency) (rate(bookwell_payment_amount_minor_total[{RATE}]))",
                    "{{kind}} {{currency}}",
                ),
            ),
        ),
    ),
)

WEBHOOKS = (
    "Webhooks",
    "bookwell-webhooks",
    "Attempts to partners' endpoints, their latency, and what waits to be sent.",
    (
        Panel(
            "Attempts by outcome",
            "Webhook attempts a second, by outcome (succeeded, http_5xx, timeout, url_forbidden, ...); runbook"
            " webhook-endpoint-failing.",
            "ops",
            (Query(calls("webhook_receiver"), "{{outcome}}"),),
        ),
        Panel(
            "Attempt latency p99",
            "99th percentile of an attempt, connect to first bytes of the answer.",
            "s",
            (
                Query(
                    p99("bookwell_dependency_call_duration_seconds", "dependency", '{dependency="webhook_receiver"}'),
                    "p99",
                ),
            ),
        ),
        Panel(
            "Deliveries waiting",
            "Deliveries not yet succeeded or dead, and those due now and not claimed.",
            "short",
            (
                Query("max(bookwell_webhook_deliveries_pending)", "pending"),
                Query("max(bookwell_webhook_deliveries_due)", "due"),
            ),
        ),
        Panel(
            "Oldest due delivery",
            "How long past its time the oldest due, unclaimed delivery is: rising, the dispatcher or the"
            " workers are behind.",
            "s",
            (Query("max(bookwell_webhook_oldest_due_age_seconds)", "oldest due"),),
        ),
        Panel(
            "Deliveries ended",
            "Deliveries ending a second, succeeded or dead (retries ran out).",
            "ops",
            (Query(f"sum by (outcome) (rate(bookwell_webhook_deliveries_total[{RATE}]))", "{{outcome}}"),),
        ),
    ),
)

DASHBOARDS = (SERVICE, ASYNC, PAYMENTS, WEBHOOKS)


def build(title: str, uid: str, description: str, panels: tuple[Panel, ...]) -> dict[str, object]:
    board = (
        dashboard.Dashboard(f"Bookwell · {title}")
        .uid(uid)
        .description(description)
        .tags(["bookwell"])
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("utc")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for panel in panels:
        chart = (
            timeseries.Panel()
            .title(panel.title)
            .description(panel.description)
            .unit(panel.unit)
            .datasource(DATASOURCE)
            .height(8)
            .span(12)
        )
        for ref, query in zip("ABCDEFGH", panel.queries, strict=False):
            chart = chart.with_target(prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref))
        board = board.with_panel(chart)
    rendered: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return rendered


def expressions() -> list[str]:
    """Every query of every dashboard (for the tests)."""
    return [query.expr for _, _, _, panels in DASHBOARDS for panel in panels for query in panel.queries]


def files() -> dict[Path, str]:
    return {
        FOLDER / f"{uid}.json": json.dumps(build(title, uid, description, panels), indent=2, sort_keys=True) + "\n"
        for title, uid, description, panels in DASHBOARDS
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed files are not what this builds")
    args = parser.parse_args()
    wanted = files()
    if args.check:
        committed = set(FOLDER.glob("*.json"))
        stale = [p.name for p, text in wanted.items() if not p.exists() or p.read_text() != text]
        stale += [p.name for p in committed - set(wanted)]
        if stale:
            print(
                f"out of date with tools/dashboards.py: {', '.join(sorted(stale))}; run `make dashboards`",
                file=sys.stderr,
            )
            return 1
        return 0
    FOLDER.mkdir(parents=True, exist_ok=True)
    for path in set(FOLDER.glob("*.json")) - set(wanted):
        path.unlink()
    for path, text in wanted.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
