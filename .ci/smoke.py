"""Every configuration README offers starts from the runtime lock alone, and keeps running.

Builds a virtualenv from `requirements.lock` only (no dev tools) and installs Bookwell's wheel,
built from the repository, into it; the processes run outside the repository, so nothing they read
comes from it (migrations, the contract, the Gunicorn configuration ship in the wheel). Then, for each database (the
embedded SQLite file, PostgreSQL) and each broker (the embedded default, Redis, RabbitMQ) starts
the four processes `make run` starts (api, relay, worker, scheduler), books a paid slot through the
API and waits for its saga to confirm it (so the worker ran jobs from that broker), checks that no
process died, and stops them with SIGTERM, each of which must exit 0. Bounded: each step has a
deadline, and everything it made (database, queues, Redis keys) is removed afterwards.

Run from the repository: `python3 .ci/smoke.py`. Needs the local PostgreSQL, Redis and RabbitMQ.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import date
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN = os.environ.get("BOOKWELL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BROKERS = {
    "filesystem": None,  # the embedded default, as SQLite is: under the data folder of an installed package
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
PROCESSES = ("relay", "worker", "scheduler")
DEADLINE_S = 90


def runtime_venv(work: Path) -> Path:
    """A virtualenv with the runtime lock and Bookwell's wheel built from the repository, nothing
    from the dev lock and nothing read from the repository afterwards (the stack runs in `work`)."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    quiet = ["--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [python, "-m", "pip", "install", *quiet, "--require-hashes", "-r", str(ROOT / "requirements.lock")], check=True
    )
    wheels = work / "wheels"
    subprocess.run([python, "-m", "pip", "wheel", *quiet, "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    [wheel] = wheels.glob("bookwell-*.whl")
    subprocess.run([python, "-m", "pip", "install", *quiet, "--no-deps", str(wheel)], check=True)
    return venv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(method: str, url: str, token: str, body: dict[str, object] | None = None, **headers: str) -> dict:
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_for(what: str, check, processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        died = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
        if died:
            fail(f"{died} exited while waiting for {what}", logs)
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.5)
    fail(f"timed out after {DEADLINE_S}s waiting for {what}", logs)


def fail(why: str, logs: Path) -> None:
    for log in sorted(logs.glob("*.log")):
        print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
    raise SystemExit(f"smoke: {why}")


def run_stack(venv: Path, work: Path, label: str, database_url: str | None, broker_url: str | None) -> None:
    """The four processes on a database and a broker (None: the embedded default, which an installed
    package keeps under `$XDG_DATA_HOME/bookwell`, here a folder of this run's)."""
    logs = work / f"logs-{label}"
    logs.mkdir()
    data_home = work / f"data-{label}"
    queue = f"bookwell-smoke-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOOKWELL_") or k.startswith("BOOKWELL_TEST_")},
        "XDG_DATA_HOME": str(data_home),
        "BOOKWELL_ENV": "development",
        "BOOKWELL_JOB_QUEUE": queue,
        "BOOKWELL_SAGA_SWEEP_EVERY_S": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env |= {"BOOKWELL_DATABASE_URL": database_url} if database_url else {}
    env |= {"BOOKWELL_BROKER_URL": broker_url} if broker_url else {}
    bookwell = str(venv / "bin" / "bookwell")
    subprocess.run([bookwell, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=work)
    if database_url is None and not (data_home / "bookwell" / "bookwell.db").is_file():
        fail(f"the default database is not {data_home}/bookwell/bookwell.db", logs)
    created = subprocess.run(
        [bookwell, "org", "create", "Smoke", "--json"], env=env, check=True, capture_output=True, cwd=work
    )
    token = json.loads(created.stdout)["api_key"]
    commands = {
        "api": [
            str(venv / "bin" / "gunicorn"),
            "--config",
            "python:bookwell.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "bookwell.app:create_app()",
        ],
        **{name: [bookwell, name] for name in PROCESSES},
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            with (logs / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(
                    command, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        api = f"http://127.0.0.1:{port}"
        wait_for("/readyz", lambda: urllib.request.urlopen(api + "/readyz", timeout=2).status == 200, processes, logs)
        wait_for("the worker", lambda: "ready." in (logs / "worker.log").read_text(), processes, logs)
        monday = date.today() + timedelta(days=14 - date.today().weekday())
        court = call(
            "POST",
            api + "/v1/resources",
            token,
            {
                "name": "Court",
                "timezone": "UTC",
                "slot_minutes": 60,
                "opening_hours": {"monday": [["08:00", "20:00"]]},
                "price_per_slot": {"amount": 1000, "currency": "EUR"},
            },
        )
        booking = call(
            "POST",
            api + "/v1/bookings",
            token,
            {
                "resource_id": court["id"],
                "start": f"{monday}T10:00:00Z",
                "end": f"{monday}T11:00:00Z",
                "customer": {"name": "Ada", "email": "ada@example.com"},
                "payment": {"token": "tok_ok"},
            },
            **{"Idempotency-Key": "smoke-1"},
        )
        url = f"{api}/v1/bookings/{booking['id']}"
        wait_for("the booking to confirm", lambda: call("GET", url, token)["status"] == "confirmed", processes, logs)
        died = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
        if died:
            fail(f"{died} exited", logs)
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(timeout=60) for name, process in processes.items()}
        if any(code != 0 for code in codes.values()):
            fail(f"a process did not stop cleanly on SIGTERM: {codes}", logs)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if broker_url is not None:
            forget_queues(venv, broker_url, (queue, queue + ".periodic"))


def forget_queues(venv: Path, broker_url: str, queues: tuple[str, ...]) -> None:
    """Remove the smoke run's queues (and Redis keys) from the shared broker servers."""
    code = f"""
import sys
from kombu import Connection
queues = {list(queues)!r}
with Connection({broker_url!r}) as connection:
    channel = connection.default_channel
    for queue in queues:
        channel.queue_delete(queue)
    if {broker_url.startswith("amqp")!r}:
        channel.exchange_delete(queues[0])
    else:
        client = channel.client
        for queue in queues:
            for key in client.scan_iter(match=f"*{{queue}}*"):
                client.delete(key)
"""
    if subprocess.run([str(venv / "bin" / "python"), "-c", code], check=False).returncode:
        print(f"smoke: could not remove the queues {queues} from {broker_url}", file=sys.stderr)


def postgres_database(venv: Path) -> tuple[str, str]:
    """A new PostgreSQL database for one run: (its URL, its name)."""
    name = f"bookwell_smoke_{uuid.uuid4().hex[:10]}"
    admin(venv, f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_ADMIN.rpartition("/")
    return f"{base}/{name}", name


def admin(venv: Path, statement: str) -> None:
    code = f"import psycopg\nwith psycopg.connect({POSTGRES_ADMIN!r}, autocommit=True) as c: c.execute({statement!r})"
    subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bookwell-smoke-") as folder:
        work = Path(folder)
        venv = runtime_venv(work)
        for broker, broker_url in BROKERS.items():
            for database in ("sqlite", "postgresql"):
                label = f"{broker}-{database}"
                started = time.monotonic()
                if database == "sqlite":  # the embedded default
                    run_stack(venv, work, label, None, broker_url)
                else:
                    url, name = postgres_database(venv)
                    try:
                        run_stack(venv, work, label, url, broker_url)
                    finally:
                        admin(venv, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                print(
                    f"smoke: {database} + {broker}: started, confirmed a paid booking, stopped cleanly "
                    f"({time.monotonic() - started:.0f}s)",
                    flush=True,
                )
    print("smoke: every database and broker README names runs from the runtime lock alone")


if __name__ == "__main__":
    main()
