"""Gunicorn as production runs it (src/bookwell/gunicorn_conf.py) on a free local port, for tests that
need real worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bookwell.platform.db import Database
from bookwell.settings import Settings
from tests.conftest import RABBITMQ_URL
from tests.support.backbone import ROOT
from tests.support.backbone import Backbone
from tests.support.backbone import create_instruments
from tests.support.net import free_port


@contextmanager
def gunicorn(database: Database, folder: Path, *, every_worker: bool = False, **env: str) -> Iterator[int]:
    """Serve `bookwell.app:create_app()` on `database` (broker in `folder`, log in `folder/gunicorn.log`),
    with `env` on top of the test settings; yields the port once `/livez` answers (`every_worker`:
    and every worker logged `worker_ready`, which takes a log level of INFO)."""
    port = free_port()
    log_path = folder / "gunicorn.log"
    environment = os.environ | {
        "BOOKWELL_ENV": "test",
        "BOOKWELL_DATABASE_URL": database.settings.database_url,
        "BOOKWELL_SECRET_KEY": database.settings.secret_key,
        "BOOKWELL_BROKER_URL": f"filesystem://{folder / 'broker'}",
        "BOOKWELL_LOG_FORMAT": "json",  # whatever the shell says: tests read these lines
        **({"BOOKWELL_LOG_LEVEL": "INFO"} if every_worker else {}),  # `worker_ready` is an INFO line
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "python:bookwell.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{port}",
                "bookwell.app:create_app()",
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 60
        workers = Settings.from_env(environment).web_workers if every_worker else 0
        while not _answers(port) or log_path.read_text().count('"worker_ready"') < workers:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("Gunicorn was not ready within 60 s: " + log_path.read_text())
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return connection.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextmanager
def whole_system(database: Database, folder: Path, provider_url: str, **env: str) -> Iterator[tuple[Backbone, int]]:
    """Relay, worker and scheduler (`Backbone`, on RabbitMQ) and Gunicorn on one job queue, charging
    the provider simulator at `provider_url`, with `env` for all four; yields the backbone and the
    API's port. The database's instruments table exists (`create_instruments`)."""
    create_instruments(database)
    shared = {"BOOKWELL_PAYMENT_PROVIDER": "http", "BOOKWELL_PAYMENT_PROVIDER_URL": provider_url, **env}
    backbone = Backbone(database, RABBITMQ_URL, folder, extra_env=shared)
    try:
        backbone.start_all()
        with gunicorn(
            database, folder, BOOKWELL_BROKER_URL=RABBITMQ_URL, BOOKWELL_JOB_QUEUE=backbone.queue, **shared
        ) as port:
            yield backbone, port
    finally:
        backbone.cleanup()
