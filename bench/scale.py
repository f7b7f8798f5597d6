"""Scale of data: the read paths' latency at 1,000,000 bookings beside 10,000, in one run.

Run with `make bench` (needs PostgreSQL and wrk; see bench/README.md). Two scratch PostgreSQL
databases are seeded by `bookwell seed` with the same shape (100 organizations, 1,000 resources,
a year of bookings in every status) and `--small` and `--large` bookings; the seeding time of each
is reported. Each gets a Gunicorn server with the API's settings and its read cache off, so every
answer comes from the database. For each path (a resource, a booking, the list's first page and a
page from the middle of the organization's bookings, each filter, a day's availability):

- closed loop: `wrk -t2 -c32` for `--seconds` on each, interleaved: requests per second, p99 and
  CPU per request of the server's processes;
- open model: a constant arrival rate, the same for both (`--open-share` of the slower one's
  peak), in `--rounds` interleaved rounds (which goes first alternates): p50 and p99 counted
  from when each request was due.

The figure that matters is the ratio of the open-model p99s, large over small (issue 11: at most
1.5). The query plans behind it are asserted in tests/integration/booking/test_query_plans.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from api import HOST
from api import VENV_BIN
from api import Stack
from api import Target
from api import _instant
from api import call
from api import closed_loop
from api import free_port
from api import open_loop
from api import server_env
from api import tool
from api import wait_until_up
from jobs import running
from relay import scratch_database

from bookwell.platform.db import Database


@contextmanager
def seeded(admin_url: str, bookings: int, organizations: int, resources: int) -> Iterator[tuple[Database, Any]]:
    """A scratch database seeded by `bookwell seed`: the database, what was made, and the seconds it took."""
    with scratch_database(admin_url) as database:
        env = server_env(database, 1, 1, 0)
        started = time.perf_counter()
        made = subprocess.run(  # noqa: S603 - Bookwell's own command
            [
                *(str(VENV_BIN / "bookwell"), "seed", "--organizations", str(organizations)),
                *("--resources", str(resources), "--bookings", str(bookings)),
            ],
            env=env,
            capture_output=True,
            check=True,
        )
        yield database, json.loads(made.stdout) | {"seconds": time.perf_counter() - started}


def page_at(port: int, token: str, path: str, depth: int) -> str:
    """The path of the `next` link about `depth` items into the list that `path` starts."""
    seen = 0
    while seen < depth:
        request = urllib.request.Request(f"http://{HOST}:{port}{path}")
        request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our server
            seen += len(json.loads(answer.read())["data"])
            link = answer.headers.get("Link")
        if link is None:
            raise SystemExit(f"bench: {path} ended before {depth} items")
        url = urllib.parse.urlsplit(link.split(";", 1)[0].strip().strip("<>"))
        path = f"{url.path}?{url.query}"
    return path


def targets(port: int, made: dict[str, Any]) -> list[Target]:
    """The paths to measure on one dataset: its first organization, that organization's first resource."""
    organization = made["organizations"][0]
    token = organization["api_key"]
    court = next(r["id"] for r in made["resources"] if r["organization_id"] == organization["id"])
    some_booking = call(port, "GET", f"/v1/bookings?resource_id={court}&limit=1", token)["data"][0]["id"]
    day = (datetime.now(UTC) + timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    span = f"from={_instant(day)}&to={_instant(day + timedelta(days=1))}"
    starting = urllib.parse.urlencode({"start_from": _instant(day), "start_to": _instant(day + timedelta(days=1))})
    owned = made["bookings"] // len(made["organizations"])
    return [
        Target("GET a resource", "bookwell", f"/v1/resources/{court}"),
        Target("GET a booking", "bookwell", f"/v1/bookings/{some_booking}"),
        Target("list, first page", "bookwell", "/v1/bookings?limit=20"),
        Target("list, a middle page", "bookwell", page_at(port, token, "/v1/bookings?limit=20", owned // 2)),
        Target("list by resource", "bookwell", f"/v1/bookings?resource_id={court}&limit=20"),
        Target("list by status", "bookwell", "/v1/bookings?status=cancelled&limit=20"),
        Target("list by customer", "bookwell", "/v1/bookings?customer_email=customer7%40example.com&limit=20"),
        Target("list by start, a day", "bookwell", f"/v1/bookings?{starting}&limit=20"),
        Target("availability, a day", "bookwell", f"/v1/resources/{court}/availability?{span}"),
    ]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--small", type=int, default=10_000, help="bookings in the small dataset")
    parser.add_argument("--large", type=int, default=1_000_000, help="bookings in the large dataset")
    parser.add_argument("--organizations", type=int, default=100)
    parser.add_argument("--resources", type=int, default=1_000)
    parser.add_argument("--seconds", type=int, default=10, help="per closed-loop and open-model run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved open-model rounds")
    parser.add_argument("--open-share", type=float, default=0.6, help="open-model rate, share of the slower peak")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    tool("wrk")
    sizes = {"small": args.small, "large": args.large}
    with (
        seeded(args.postgres, args.small, args.organizations, args.resources) as (small_db, small),
        seeded(args.postgres, args.large, args.organizations, args.resources) as (large_db, large),
        tempfile.TemporaryDirectory(prefix="bookwell-bench-scale-") as folder,
    ):
        work = Path(folder)
        made = {"small": small, "large": large}
        for size, count in sizes.items():
            print(json.dumps({"dataset": size, "bookings": count, "seed_s": round(made[size]["seconds"], 1)}))
        ports = {size: free_port() for size in sizes}
        gunicorn = str(VENV_BIN / "gunicorn")
        command = [gunicorn, "--config", "python:bookwell.gunicorn_conf", "bookwell.app:create_app()"]
        environments = {
            size: server_env(database, args.workers, args.threads, ports[size]) | {"BOOKWELL_CACHE_URL": "off"}
            for size, database in (("small", small_db), ("large", large_db))
        }
        with (
            running(command, environments["small"], work / "small.log") as small_server,
            running(command, environments["large"], work / "large.log") as large_server,
        ):
            servers = {"small": small_server, "large": large_server}
            stacks, paths = {}, {}
            for size, server in servers.items():
                wait_until_up(ports[size], "/livez", server, work / f"{size}.log")
                token = made[size]["organizations"][0]["api_key"]
                stacks[size] = Stack({"bookwell": ports[size]}, {"bookwell": server.pid}, token, datetime.now(UTC))
                paths[size] = targets(ports[size], made[size])
            base = 0
            for n, name in enumerate(t.name for t in paths["small"]):
                closed, opened = {}, {size: [] for size in sizes}
                for size in sizes:
                    closed[size] = closed_loop(paths[size][n], stacks[size], args.seconds, base, work)
                rate = min(run["per_s"] for run in closed.values()) * args.open_share
                for round_ in range(args.rounds):
                    for size in sorted(sizes, reverse=round_ % 2 == 1):  # small first, then large first
                        opened[size].append(open_loop(paths[size][n], stacks[size], rate, args.seconds, base))
                p99 = {size: statistics.median(run["p99_ms"] for run in opened[size]) for size in sizes}
                line: dict[str, Any] = {"path": name, "open_rate": round(rate, 1)}
                for size in sizes:
                    line[size] = {
                        "per_s": round(closed[size]["per_s"], 1),
                        "closed_p99_ms": round(closed[size]["p99_ms"], 1),
                        "cpu_ms": round(closed[size]["cpu_ms"], 2),
                        "open_p50_ms": round(statistics.median(run["p50_ms"] for run in opened[size]), 1),
                        "open_p99_ms": round(p99[size], 1),
                    }
                line["p99_ratio"] = round(p99["large"] / p99["small"], 2)
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    sys.exit(main())
