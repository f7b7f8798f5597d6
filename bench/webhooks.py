"""Webhooks benchmark: a healthy partner's delivery lag (commit to its 2xx) while another partner
times out on every attempt, beside the same run with the healthy partner alone.

Run with `make bench` (needs PostgreSQL and RabbitMQ; see bench/README.md). `bookwell relay`,
`worker` and `scheduler` run on a scratch PostgreSQL database and RabbitMQ; in interleaved rounds
(A/B, A/B) events are committed at a steady rate (`--rate` per second for `--seconds`) to an
organization with:

- A: one endpoint, a receiver on 127.0.0.1 that answers 204 at once;
- B: that endpoint and a second one whose receiver never answers within the attempt's timeout
  (`BOOKWELL_WEBHOOK_TIMEOUT_S`, 2 s here): every attempt to it times out.

The lag of an event is the time from its commit (taken by the writer right after it) to the healthy
receiver's answer; p50, p99 and the worst per round, and the attempts the dead partner took.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jobs import environment
from jobs import running
from relay import scratch_database
from sqlalchemy import func
from sqlalchemy import select

from bookwell.catalog import service as catalog_service
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.notifications import service as notifications_service
from bookwell.notifications.adapters.http import LOOPBACK
from bookwell.notifications.adapters.http import UrlPolicy
from bookwell.notifications.adapters.sql import SqlNotificationsUnitOfWork
from bookwell.notifications.adapters.sql import webhook_attempts
from bookwell.notifications.adapters.sql import webhook_deliveries
from bookwell.platform.db import Database

TIMEOUT_S = 2.0
COURT = {
    "name": "Court",
    "timezone": "UTC",
    "slot_minutes": 60,
    "opening_hours": {"monday": [["08:00", "20:00"]]},
    "price_per_slot": {"amount": 0, "currency": "EUR"},
}


class Partner:
    """A receiver on 127.0.0.1: notes when each webhook-id first arrived, answering 204 (or, as a
    tarpit, after longer than the sender waits)."""

    def __init__(self, *, tarpit: bool) -> None:
        self.arrived: dict[str, float] = {}
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                if tarpit:
                    time.sleep(TIMEOUT_S + 1)
                else:
                    partner.arrived.setdefault(self.headers["webhook-id"], time.perf_counter())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def endpoint(database: Database, organization_id: str, url: str) -> str:
    made, _ = notifications_service.create_endpoint(
        uow=SqlNotificationsUnitOfWork(database),
        policy=UrlPolicy(LOOPBACK, http_allowed=False),
        secret_key=database.settings.secret_key,
        organization_id=organization_id,
        fields={"url": url, "event_types": ["resource.updated"]},
    )
    return made.id


def attempts_to(database: Database, endpoint_id: str) -> int:
    with database.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(webhook_attempts.join(webhook_deliveries))
                .where(webhook_deliveries.c.endpoint_id == endpoint_id)
            ).scalar_one()
        )


def one_round(database: Database, broker_url: str, *, with_tarpit: bool, rate: float, seconds: float) -> dict[str, Any]:
    organization, _ = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Bench")
    court = catalog_service.create_resource(
        uow=SqlCatalogUnitOfWork(database), organization_id=organization.id, fields=COURT
    )
    healthy, tarpit = Partner(tarpit=False), Partner(tarpit=True)
    endpoint(database, organization.id, healthy.url)
    dead = endpoint(database, organization.id, tarpit.url) if with_tarpit else None
    queue = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
    env = environment(
        database,
        broker_url,
        queue,
        BOOKWELL_HANDLER_MODULES="",
        BOOKWELL_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        BOOKWELL_WEBHOOK_TIMEOUT_S=str(TIMEOUT_S),
        BOOKWELL_WEBHOOK_DISPATCH_EVERY_S="0.5",
        BOOKWELL_LOG_LEVEL="WARNING",
    )
    committed: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        logs = Path(folder)
        with (
            running([str(Path(".venv/bin/bookwell").resolve()), "relay"], env, logs / "relay.log"),
            running([str(Path(".venv/bin/bookwell").resolve()), "worker"], env, logs / "worker.log"),
            running([str(Path(".venv/bin/bookwell").resolve()), "scheduler"], env, logs / "scheduler.log"),
        ):
            time.sleep(5)  # the processes start
            count = int(rate * seconds)
            for n in range(count):
                due = time.perf_counter() + 1 / rate
                catalog_service.update_resource(
                    uow=SqlCatalogUnitOfWork(database),
                    organization_id=organization.id,
                    resource_id=court.id,
                    accepted_versions=None,
                    changes={"description": f"update {n}"},
                )
                committed[_last_event(database)] = time.perf_counter()
                time.sleep(max(0.0, due - time.perf_counter()))
            deadline = time.monotonic() + 120
            while len(healthy.arrived) < count and time.monotonic() < deadline:
                time.sleep(0.1)
    lags = sorted(healthy.arrived[e] - at for e, at in committed.items() if e in healthy.arrived)
    healthy.close()
    tarpit.close()
    return {
        "events": len(committed),
        "delivered": len(lags),
        "p50_s": statistics.median(lags),
        "p99_s": lags[max(0, round(len(lags) * 0.99) - 1)],
        "max_s": lags[-1],
        "dead_partner_attempts": attempts_to(database, dead) if dead else 0,
    }


def _last_event(database: Database) -> str:
    with database.engine.connect() as connection:
        return str(connection.exec_driver_sql("SELECT id FROM outbox ORDER BY seq DESC LIMIT 1").scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rabbitmq", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--rate", type=float, default=10.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"healthy alone": [], "beside a timing-out partner": []}
    with scratch_database(options.postgres) as database:
        for _ in range(options.rounds):
            for name, with_tarpit in (("healthy alone", False), ("beside a timing-out partner", True)):
                outcome = one_round(
                    database, options.rabbitmq, with_tarpit=with_tarpit, rate=options.rate, seconds=options.seconds
                )
                results[name].append(outcome)
                print(f"{name}: {json.dumps(outcome)}", flush=True)
    for name, rounds in results.items():
        worst = max(r["p99_s"] for r in rounds)
        print(f"{name}: p99 lag per round {[round(r['p99_s'], 3) for r in rounds]} s (worst {worst:.3f} s)")


if __name__ == "__main__":
    main()
