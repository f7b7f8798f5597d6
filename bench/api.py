"""HTTP benchmark: the API's paths over real HTTP, beside bare Flask and pgbench, in one run.

Run with `make bench` (needs PostgreSQL, Redis, wrk and pgbench; see bench/README.md). Three
Gunicorn servers with the API's settings (gthread, `--workers` x `--threads`): Bookwell on a scratch
PostgreSQL database (production settings, the default rate limits with quotas too high to refuse
anything, so every request is still counted) with its read cache in Redis (`--cache`), the same
with the cache off (the "uncached" paths, on the same database), and a bare Flask "hello JSON" app. In interleaved
rounds (every path once per round, in the same order), for each path:

- closed loop: `wrk -t2 -c32` for `--seconds`: requests per second, p50 and p99;
- CPU per request: user + system CPU of the server's processes (master and workers) over the run,
  divided by the requests answered (steadier than the rate on a shared machine).

Then, once per path, an open-model run at `--open-share` (60 %) of its median closed-loop peak:
a constant arrival rate, each latency counted from when its request was due
(`api_parts.open_model`), so p99 shows the queue a closed loop hides. pgbench TPC-B (8 clients)
on the same PostgreSQL server is the write baseline, interleaved with the rest. Every answer must
be 2xx, or the benchmark stops: a fast error is not a fast path.

Last, the memory run: `--memory` (100,000) requests more in 10-second closed loops cycling through
Bookwell's paths (all but the 31-day availability), with each worker's RSS once half were answered
and at the end; the growth between the two is where a leak would show.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from relay import empty_database
from relay import scratch_database

from bookwell.platform.db import Database
from bookwell.settings import RATE_LIMIT_POLICIES

BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(BENCH))
from api_parts import open_model  # noqa: E402 - bench/ is not a package
from jobs import cpu_s  # noqa: E402
from jobs import python_path  # noqa: E402
from jobs import running  # noqa: E402

HOST = "127.0.0.1"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SLOTS = 200_000  # 5-minute slots ahead a booking may take (694 days: inside the 730-day horizon)


def tool(name: str) -> str:
    """The path of a program the benchmark runs (wrk and pgbench, from Debian's packages)."""
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: {name} is not installed (bench/README.md says how)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_cpu_s(master: int) -> float:
    """CPU seconds of a Gunicorn master and its workers (its child processes)."""
    total = cpu_s(master)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while listed
        if int(fields[1]) == master:
            total += cpu_s(int(stat.parent.name))
    return total


def worker_rss_mb(master: int) -> list[float]:
    """Resident memory of each worker of a Gunicorn master, in MB."""
    sizes = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if int(fields["PPid"]) == master:
            sizes.append(int(fields["VmRSS"].split()[0]) / 1024)
    return sorted(sizes)


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: the server on {port} stopped\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: the server on {port} did not answer within 60 s")


def call(port: int, method: str, path: str, token: str | None = None, body: Any = None, **headers: str) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our server
        return json.loads(answer.read() or b"null")


@dataclass(frozen=True)
class Target:
    """One path to measure: a GET of `path`, or a booking POST for `resource_id`."""

    name: str
    server: str  # "bookwell", "uncached" (the same with the read cache off) or "bare"
    path: str
    resource_id: str | None = None  # POST /v1/bookings for this resource when set
    priced: bool = False  # the booking carries a payment token


@dataclass
class Stack:
    ports: dict[str, int]
    masters: dict[str, int]
    token: str
    first_slot: datetime


def _slot(stack: Stack, n: int) -> tuple[str, str]:
    start = stack.first_slot + timedelta(minutes=5 * (n % SLOTS))
    return _instant(start), _instant(start + timedelta(minutes=5))


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def booking_body(resource_id: str, start: str, end: str, *, priced: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resource_id": resource_id,
        "start": start,
        "end": end,
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    }
    return body | ({"payment": {"token": "tok_ok"}} if priced else {})


def wrk_script(target: Target, stack: Stack, base: int) -> str:
    """The wrk Lua script for `target`: its headers, its body (a booking on its own slot and
    idempotency key per request, from `base` on), and a JSON summary line at the end."""
    lines = [f'wrk.headers["Authorization"] = "Bearer {stack.token}"']
    if target.resource_id is not None:
        first = int(stack.first_slot.timestamp())
        template = json.dumps(booking_body(target.resource_id, "START", "END", priced=target.priced))
        lines += [
            'wrk.method = "POST"',
            'wrk.headers["Content-Type"] = "application/json"',
            "local threads = 0",
            'function setup(thread) thread:set("tid", threads); threads = threads + 1 end',
            "function init(args) counter = 0 end",
            "function request()",
            "  counter = counter + 1",
            f"  local n = {base} + counter * 2 + tid",
            f"  local start = {first} + (n % {SLOTS}) * 300",
            f"  local body = string.gsub(string.gsub({json.dumps(template)}, "
            '"START", os.date("!%Y-%m-%dT%H:%M:%SZ", start)), "END", os.date("!%Y-%m-%dT%H:%M:%SZ", start + 300))',
            "  local headers = {}",  # wrk.format's headers replace wrk.headers: copy them, and add the key
            "  for name, value in pairs(wrk.headers) do headers[name] = value end",
            f'  headers["Idempotency-Key"] = "bench-{uuid.uuid4().hex[:8]}-" .. n',
            "  return wrk.format(nil, nil, headers, body)",
            "end",
        ]
    summary = '{"requests": %d, "us": %d, "p50_us": %d, "p99_us": %d, "bad": %d, "broken": %d}'
    lines += [
        "function response(status, headers, body)",  # the first refusal, to say why
        "  if status >= 300 and not shown then",
        '    shown = true; io.write("first refused: " .. status .. " " .. body .. "\\n")',
        "  end",
        "end",
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        f"  io.write(string.format('{summary}\\n',",
        "    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,",
        "    e.connect + e.read + e.write + e.timeout))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def closed_loop(target: Target, stack: Stack, seconds: float, base: int, work: Path) -> dict[str, float]:
    script = work / (re.sub(r"[^a-z0-9]+", "-", target.name.lower()) + ".lua")
    script.write_text(wrk_script(target, stack, base))
    port, master = stack.ports[target.server], stack.masters[target.server]
    cpu_before = server_cpu_s(master)
    output = subprocess.run(  # noqa: S603 - wrk, from Debian's package (bench/README.md)
        [
            tool("wrk"),
            "-t2",
            "-c32",
            f"-d{int(seconds)}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            f"http://{HOST}:{port}{target.path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = server_cpu_s(master) - cpu_before
    summary = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    if summary["bad"] or summary["broken"]:
        raise SystemExit(f"bench: {target.name}: {summary['bad']} non-2xx, {summary['broken']} socket errors\n{output}")
    requests = summary["requests"]
    return {
        "requests": requests,
        "per_s": requests / (summary["us"] / 1e6),
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "cpu_ms": cpu * 1000 / requests,
    }


def raw_request(target: Target, stack: Stack, base: int) -> Callable[[int], bytes]:
    """Request `n` of an open-model run as HTTP/1.1 bytes (a POST takes slot `base + n`)."""
    head = f"Host: {HOST}\r\nAuthorization: Bearer {stack.token}\r\n"
    if target.resource_id is None:
        fixed = f"GET {target.path} HTTP/1.1\r\n{head}\r\n".encode()
        return lambda _n: fixed
    resource_id = target.resource_id
    run = uuid.uuid4().hex[:8]

    def post(n: int) -> bytes:
        body = json.dumps(booking_body(resource_id, *_slot(stack, base + n), priced=target.priced)).encode()
        return (
            f"POST {target.path} HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
            f"Idempotency-Key: bench-open-{run}-{n}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    return post


def open_loop(target: Target, stack: Stack, rate: float, seconds: float, base: int) -> dict[str, float]:
    port, master = stack.ports[target.server], stack.masters[target.server]
    cpu_before = server_cpu_s(master)
    run = open_model(HOST, port, rate=rate, seconds=seconds, request=raw_request(target, stack, base))
    cpu = server_cpu_s(master) - cpu_before
    bad = {status: n for status, n in run.statuses.items() if not 200 <= status < 300}
    if bad:
        raise SystemExit(f"bench: {target.name} (open model): answers {bad}")
    latencies = sorted(run.latencies)
    return {
        "rate": rate,
        "achieved_per_s": len(latencies) / run.seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "cpu_ms": cpu * 1000 / len(latencies),
    }


def memory_run(mix: list[Target], stack: Stack, requests: int, base: int, work: Path) -> dict[str, Any]:
    """RSS of each Bookwell worker once half of `requests` and once all of them were answered, sent in
    10-second closed-loop runs cycling through `mix`; the growth between the two is where a leak shows."""
    sent, halfway, n = 0, None, 0
    while sent < requests:
        target = mix[n % len(mix)]
        sent += int(closed_loop(target, stack, 10, base + n * 1_000_003, work)["requests"])
        n += 1
        if halfway is None and sent >= requests // 2:
            halfway = (sent, worker_rss_mb(stack.masters["bookwell"]))
    assert halfway is not None
    end = worker_rss_mb(stack.masters["bookwell"])
    growth = [round((after / before - 1) * 100, 1) for before, after in zip(halfway[1], end, strict=True)]
    return {"requests": sent, "halfway": halfway[0], "rss_mb_halfway": halfway[1], "rss_mb": end, "growth_pct": growth}


def pgbench(url: str, seconds: float) -> float:
    """TPC-B transactions per second, 8 clients on 2 threads."""
    output = subprocess.run(  # noqa: S603 - PostgreSQL's own benchmark
        [
            tool("pgbench"),
            "-n",
            "-c",
            "8",
            "-j",
            "2",
            "-T",
            str(int(seconds)),
            "-b",
            "tpcb-like",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    if match is None:
        raise SystemExit(f"bench: no tps in pgbench's output\n{output}")
    return float(match.group(1))


@contextmanager
def pgbench_database(admin_url: str) -> Iterator[str]:
    """A database with pgbench's tables (scale 10), dropped afterwards."""
    with empty_database(admin_url) as url:
        subprocess.run([tool("pgbench"), "-i", "-q", "-s", "10", url], capture_output=True, check=True)  # noqa: S603
        yield url


def server_env(database: Database, workers: int, threads: int, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKWELL_", "PROMETHEUS_", "OTEL_"))}
    env |= {
        "BOOKWELL_ENV": "production",
        "BOOKWELL_SECRET_KEY": "bench-secret-key-" + uuid.uuid4().hex * 2,
        "BOOKWELL_DATABASE_URL": database.settings.database_url,
        "BOOKWELL_BROKER_URL": "redis://127.0.0.1:6379/15",
        "BOOKWELL_HTTP_BIND": f"{HOST}:{port}",
        "BOOKWELL_WEB_WORKERS": str(workers),
        "BOOKWELL_WEB_THREADS": str(threads),
        "PYTHONPATH": python_path(),
    }
    # Counted, as by default, but never refused: the benchmark sends far more than a client may.
    env |= {f"BOOKWELL_RATE_LIMIT_{policy.upper()}": "1000000000/3600" for policy in RATE_LIMIT_POLICIES}
    return env


def setup_data(port: int, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """An organization (its key), a free and a priced resource, and 200 bookings on the free one."""
    made = subprocess.run(  # noqa: S603 - Bookwell's own command
        [str(VENV_BIN / "bookwell"), "org", "create", "Bench", "--json"], env=env, capture_output=True, check=True
    )
    token = json.loads(made.stdout)["api_key"]
    hours = {day: [["00:00", "24:00"]] for day in DAYS}
    ids = {}
    for name, amount in (("free", 0), ("priced", 1500)):
        resource = {
            "name": f"Court ({name})",
            "timezone": "UTC",
            "slot_minutes": 5,
            "max_slots": 4,
            "capacity": 1000,
            "price_per_slot": {"amount": amount, "currency": "EUR"},
            "opening_hours": hours,
        }
        ids[name] = call(port, "POST", "/v1/resources", token, resource)["id"]
    return token, ids


def targets(stack: Stack, ids: dict[str, str], booking_id: str) -> list[Target]:
    day = stack.first_slot.replace(hour=0, minute=0) + timedelta(days=1)
    span = f"from={_instant(day)}&to={_instant(day + timedelta(days=1))}"
    month = f"from={_instant(day)}&to={_instant(day + timedelta(days=31))}"
    free = ids["free"]
    return [
        Target("bare Flask hello", "bare", "/"),
        Target("GET /livez", "bookwell", "/livez"),
        Target("GET a resource", "bookwell", f"/v1/resources/{free}"),
        Target("GET a resource, uncached", "uncached", f"/v1/resources/{free}"),
        Target("GET a booking", "bookwell", f"/v1/bookings/{booking_id}"),
        Target("bookings list page (20)", "bookwell", f"/v1/bookings?resource_id={free}&limit=20"),
        Target("availability, a day", "bookwell", f"/v1/resources/{free}/availability?{span}"),
        Target("availability, a day, uncached", "uncached", f"/v1/resources/{free}/availability?{span}"),
        Target("availability, 31 days", "bookwell", f"/v1/resources/{free}/availability?{month}"),
        Target("availability, 31 days, uncached", "uncached", f"/v1/resources/{free}/availability?{month}"),
        Target("POST a booking (free)", "bookwell", "/v1/bookings", free),
        Target("POST a booking (priced)", "bookwell", "/v1/bookings", ids["priced"], priced=True),
    ]


def chosen_targets(every: list[Target], only: list[str]) -> list[Target]:
    """The targets whose names start with one of `only` (all when it is empty); a prefix that names
    none stops the benchmark (a typo would otherwise measure nothing in silence)."""
    if unmatched := [prefix for prefix in only if not any(t.name.startswith(prefix) for t in every)]:
        raise SystemExit(f"bench: --only {unmatched} names no target")
    return [t for t in every if not only or t.name.startswith(tuple(only))]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--seconds", type=int, default=10, help="per closed-loop and open-model run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved closed-loop rounds")
    parser.add_argument("--open-share", type=float, default=0.6, help="open-model rate, share of the closed-loop peak")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--memory", type=int, default=100_000, help="requests of the memory run (0: none)")
    parser.add_argument(
        "--cache", default="redis://127.0.0.1:6379/14", help="BOOKWELL_CACHE_URL of the server that caches reads"
    )
    parser.add_argument("--only", action="append", default=[], help="a target name's prefix (repeatable); default all")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    tool("wrk"), tool("pgbench")  # before anything starts
    with (
        scratch_database(args.postgres) as database,
        pgbench_database(args.postgres) as pgbench_url,
        tempfile.TemporaryDirectory(prefix="bookwell-bench-") as folder,
    ):
        work = Path(folder)
        ports = {"bookwell": free_port(), "uncached": free_port(), "bare": free_port()}
        env = server_env(database, args.workers, args.threads, ports["bookwell"]) | {"BOOKWELL_CACHE_URL": args.cache}
        uncached_env = server_env(database, args.workers, args.threads, ports["uncached"]) | {
            "BOOKWELL_CACHE_URL": "off"
        }
        gunicorn = str(VENV_BIN / "gunicorn")
        bookwell_cmd = [gunicorn, "--config", "python:bookwell.gunicorn_conf", "bookwell.app:create_app()"]
        bare_cmd = [
            *(gunicorn, "--worker-class", "gthread", "--workers", str(args.workers), "--threads", str(args.threads)),
            *("--keep-alive", "5", "--bind", f"{HOST}:{ports['bare']}", "api_parts:bare"),
        ]
        with (
            running(bookwell_cmd, env, work / "bookwell.log") as bookwell,
            running(bookwell_cmd, uncached_env, work / "uncached.log") as uncached,
            running(bare_cmd, env, work / "bare.log") as bare,
        ):
            wait_until_up(ports["bookwell"], "/livez", bookwell, work / "bookwell.log")
            wait_until_up(ports["uncached"], "/livez", uncached, work / "uncached.log")
            wait_until_up(ports["bare"], "/", bare, work / "bare.log")
            token, ids = setup_data(ports["bookwell"], env)
            first_slot = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            masters = {"bookwell": bookwell.pid, "uncached": uncached.pid, "bare": bare.pid}
            stack = Stack(ports, masters, token, first_slot)
            booking_id = ""
            for n in range(200):
                body = booking_body(ids["free"], *_slot(stack, SLOTS - 1 - n))
                booking_id = call(ports["bookwell"], "POST", "/v1/bookings", token, body, Idempotency_Key=f"seed-{n}")[
                    "id"
                ]
            chosen = chosen_targets(targets(stack, ids, booking_id), args.only)
            closed: dict[str, list[dict[str, float]]] = {t.name: [] for t in chosen}
            tps: list[float] = []
            base = 0
            for _ in range(args.rounds):
                for target in chosen:
                    closed[target.name].append(closed_loop(target, stack, args.seconds, base, work))
                    base += 1_000_003  # the next run's bookings start on other slots and keys
                tps.append(pgbench(pgbench_url, args.seconds))
            report = {"rounds": args.rounds, "seconds": args.seconds, "pgbench_tps": statistics.median(tps)}
            bare_peak = statistics.median(r["per_s"] for r in closed.get("bare Flask hello", [{"per_s": 0}]))
            for target in chosen:
                runs = closed[target.name]
                peak = statistics.median(r["per_s"] for r in runs)
                line: dict[str, Any] = {
                    "path": target.name,
                    "per_s": round(peak, 1),
                    "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
                    "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
                    "cpu_ms": round(statistics.median(r["cpu_ms"] for r in runs), 3),
                }
                if bare_peak:
                    line["share_of_bare"] = round(peak / bare_peak, 3)
                if target.resource_id is not None:
                    line["share_of_pgbench"] = round(peak / report["pgbench_tps"], 3)
                opened = open_loop(target, stack, peak * args.open_share, args.seconds, base)
                base += 1_000_003
                line["open"] = {key: round(value, 2) for key, value in opened.items()}
                print(json.dumps(line), flush=True)
            report["rss_mb"] = worker_rss_mb(bookwell.pid)
            print(json.dumps(report), flush=True)
            if args.memory:
                mix = [t for t in targets(stack, ids, booking_id) if t.server == "bookwell" and "31 days" not in t.name]
                print(json.dumps({"memory": memory_run(mix, stack, args.memory, base, work)}), flush=True)


if __name__ == "__main__":
    main()
