"""The cost of seeing: the read path (an authenticated GET of a resource) with tracing off, on at
100 % and at 10 % sampling, beside bare Flask, in one run, interleaved.

Run with `make bench` (needs PostgreSQL and wrk). Four Gunicorn servers with the API's settings on
one scratch database: bare Flask, and Bookwell three times, differing only in their environment:
no collector; `OTEL_EXPORTER_OTLP_ENDPOINT` at a sink in this process (it answers every export
and keeps nothing) with `BOOKWELL_TRACE_SAMPLE_RATIO` 1.0; and the same at 0.1. Each round runs
every server once (`wrk -t2 -c32`), the same order every round; per server: requests a second, p99,
and CPU per request of the server's processes (the exporter's work included). The cost is
1 - traced / untraced, of requests a second (the issue's goal: at most 15 % at 10 % sampling).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

from api import HOST
from api import VENV_BIN
from api import Stack
from api import Target
from api import closed_loop
from api import free_port
from api import server_env
from api import setup_data
from api import tool
from api import wait_until_up
from jobs import running
from relay import scratch_database

SERVERS = {
    "tracing off": {},
    "tracing 100 %": {"BOOKWELL_TRACE_SAMPLE_RATIO": "1.0"},
    "tracing 10 %": {"BOOKWELL_TRACE_SAMPLE_RATIO": "0.1"},
}


@contextmanager
def otlp_sink() -> Iterator[tuple[str, list[int]]]:
    """An OTLP/HTTP endpoint that answers every export (an empty response) and counts the bytes sent."""
    received = [0]

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received[0] += len(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{HOST}:{server.server_port}", received
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    tool("wrk")
    gunicorn = str(VENV_BIN / "gunicorn")
    with (
        scratch_database(args.postgres) as database,
        tempfile.TemporaryDirectory(prefix="bookwell-bench-") as folder,
        otlp_sink() as (endpoint, received),
        ExitStack() as servers,
    ):
        work = Path(folder)
        ports, masters = {}, {}
        bare_port = ports["bare"] = free_port()
        bare_cmd = [
            *(gunicorn, "--worker-class", "gthread", "--workers", str(args.workers), "--threads", str(args.threads)),
            *("--keep-alive", "5", "--bind", f"{HOST}:{bare_port}", "api_parts:bare"),
        ]
        env = server_env(database, args.workers, args.threads, bare_port)
        bare = servers.enter_context(running(bare_cmd, env, work / "bare.log"))
        masters["bare"] = bare.pid
        wait_until_up(bare_port, "/", bare, work / "bare.log")
        for name, extra in SERVERS.items():
            port = ports[name] = free_port()
            env = server_env(database, args.workers, args.threads, port)
            if extra:
                env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **extra}
            command = [gunicorn, "--config", "python:bookwell.gunicorn_conf", "bookwell.app:create_app()"]
            log = work / f"{name.replace(' ', '-').replace('%', 'pc')}.log"
            server = servers.enter_context(running(command, env, log))
            masters[name] = server.pid
            wait_until_up(port, "/livez", server, log)
        token, ids = setup_data(ports["tracing off"], env)
        stack = Stack(ports, masters, token, datetime.now(UTC))
        chosen = [Target("bare Flask hello", "bare", "/")] + [
            Target(name, name, f"/v1/resources/{ids['free']}") for name in SERVERS
        ]
        runs: dict[str, list[dict[str, float]]] = {t.name: [] for t in chosen}
        for _ in range(args.rounds):
            for target in chosen:
                runs[target.name].append(closed_loop(target, stack, args.seconds, 0, work))
        peak = {name: statistics.median(r["per_s"] for r in measured) for name, measured in runs.items()}
        for name, measured in runs.items():
            line = {
                "server": name,
                "per_s": round(peak[name], 1),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in measured), 2),
                "cpu_ms": round(statistics.median(r["cpu_ms"] for r in measured), 3),
                "share_of_bare": round(peak[name] / peak["bare Flask hello"], 3),
            }
            if name.startswith("tracing ") and name != "tracing off":
                line["cost_vs_off"] = round(1 - peak[name] / peak["tracing off"], 3)
            print(json.dumps(line), flush=True)
        print(json.dumps({"rounds": args.rounds, "seconds": args.seconds, "exported_bytes": received[0]}), flush=True)


if __name__ == "__main__":
    main()
