"""A burst against the stack as `make run` runs it (honcho, the Procfile, the embedded broker): 400
`POST /v1/bookings` at 16 in parallel, priced and free, on SQLite and on PostgreSQL, once as is and
once with a kill -9 of the worker in the middle. Every request is answered (201, or 409 for a slot
already taken), the stack stays up (the supervisor starts the killed worker again), and every
accepted priced booking reaches a final state through its saga."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from bookwell.booking.adapters.sql import bookings
from bookwell.catalog import service as catalog_service
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from tests.conftest import UNLIMITED_ENV
from tests.support.backbone import ROOT
from tests.support.backbone import wait_for_drain
from tests.support.booking import EVERY_DAY
from tests.support.net import free_port

REQUESTS, PARALLEL, SLOTS = 400, 16, 120


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below `pid`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent:
                try:
                    command = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                found.append((child, command))
                frontier.append(child)
    return found


class Stack:
    """`honcho start` on the Procfile, as `make run` starts it, on the test's database and broker folder."""

    def __init__(self, database: Database, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "honcho.log"
        env = {
            **os.environ,
            "BOOKWELL_ENV": "test",
            "BOOKWELL_SECRET_KEY": database.settings.secret_key,
            "BOOKWELL_DATABASE_URL": database.settings.database_url,
            "BOOKWELL_BROKER_URL": f"filesystem://{folder / 'broker'}",
            "BOOKWELL_HTTP_BIND": f"127.0.0.1:{self.port}",
            "BOOKWELL_LOG_LEVEL": "WARNING",
            "BOOKWELL_SAGA_SWEEP_EVERY_S": "1",
            "BOOKWELL_STALL_AFTER_S": "5",
            "BOOKWELL_REDRIVE_EVERY_S": "2",
            **UNLIMITED_ENV,
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("BOOKWELL_NATS_URL", None)
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "honcho"), "--no-colour", "start", "--procfile", "Procfile"],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        assert self.alive(), f"honcho stopped the stack\n{self.log.read_text()[-4000:]}"

    def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), self.log.read_text()
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2):  # noqa: S310 - our own server
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"the stack was not ready after {timeout}s\n{self.log.read_text()}")

    def worker_pid(self) -> int:
        workers = [
            pid
            for pid, command in _descendants(self.process.pid)
            if "bin/bookwell worker" in command and "supervise" not in command
        ]
        assert len(workers) == 1, _descendants(self.process.pid)
        return workers[0]

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def organization(database: Database) -> tuple[str, str]:
    """A new organization and its first key's token."""
    made, token = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Burst")
    return made.id, token


def court(database: Database, organization_id: str, price: int) -> str:
    """A court open round the clock in `organization_id`, at `price` cents an hour."""
    made = catalog_service.create_resource(
        uow=SqlCatalogUnitOfWork(database),
        organization_id=organization_id,
        fields={
            "name": f"Court at {price}",
            "timezone": "UTC",
            "slot_minutes": 60,
            "opening_hours": {day: [["00:00", "24:00"]] for day in EVERY_DAY},
            "price_per_slot": {"amount": price, "currency": "EUR"},
        },
    )
    return made.id


def book(url: str, token: str, body: dict[str, object], key: str) -> int | str:
    """The answer's status, or why there was none (a connection-level failure)."""
    request = urllib.request.Request(  # noqa: S310 - our own server
        url + "/v1/bookings",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError as error:
        return f"no answer: {error}"


def final_or_not(database: Database, organization_id: str) -> Counter[str]:
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(bookings.c.status, func.count())
            .where(bookings.c.organization_id == organization_id)
            .group_by(bookings.c.status)
        )
        return Counter(dict(rows.all()))


@pytest.mark.parametrize("kill_worker", [False, True], ids=["as-is", "worker-killed"])
def test_a_burst_of_bookings_is_answered_and_settled_with_the_stack_up(
    database: Database, tmp_path: Path, kill_worker: bool
) -> None:
    organization_id, token = organization(database)
    priced, free = court(database, organization_id, 1500), court(database, organization_id, 0)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    stack = Stack(database, tmp_path)
    try:
        stack.ready()

        def one(n: int) -> int | str:
            at = start + timedelta(hours=n % SLOTS)
            body = {
                "resource_id": priced if n % 2 else free,
                "start": at.isoformat().replace("+00:00", "Z"),
                "end": (at + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                "customer": {"name": "Ada", "email": "ada@example.com"},
                **({"payment": {"token": "tok_ok"}} if n % 2 else {}),
            }
            return book(stack.url, token, body, f"burst-{n}")

        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            futures = [pool.submit(one, n) for n in range(REQUESTS)]
            if kill_worker:
                while sum(f.done() for f in futures) < REQUESTS // 2:
                    time.sleep(0.05)
                os.kill(stack.worker_pid(), signal.SIGKILL)  # in the middle of the burst
            answers = [f.result() for f in futures]
        statuses = Counter(answers)
        assert set(statuses) <= {201, 409}, statuses
        assert stack.alive(), stack.log.read_text()[-4000:]
        wait_for_drain(
            lambda: final_or_not(database, organization_id)["pending"],
            "every priced booking to reach a final state",
            check=stack.check_alive,
            output=lambda: stack.log.read_text()[-4000:],
        )
        settled = final_or_not(database, organization_id)
        assert settled["pending"] == 0, (settled, stack.log.read_text()[-4000:])
        assert sum(settled.values()) == statuses[201]
        assert set(settled) == {"confirmed"}, settled  # free at once; priced once tok_ok is charged
        if kill_worker:
            assert "process_exited" in stack.log.read_text(), "the killed worker was started again"
        stack.ready()
    finally:
        stack.stop()
