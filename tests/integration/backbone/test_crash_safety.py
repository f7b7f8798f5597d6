"""Crash safety: kill -9 the relay and the worker at random moments while bookings are written, and
restart them; afterwards every committed event ran each handler exactly once and is in JetStream
exactly once, nothing is left unsent and nothing is dead-lettered.

PostgreSQL, RabbitMQ (quorum queue: a dead worker's unacknowledged job is redelivered) and NATS
JetStream, all real. The test handler sleeps inside its transaction so kills land mid-handler too.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bookwell.booking import service as booking_service
from bookwell.booking.adapters.sql import SqlBookingUnitOfWork
from bookwell.platform.db import Database
from tests.conftest import NATS_URL
from tests.conftest import RABBITMQ_URL
from tests.support.backbone import Backbone
from tests.support.backbone import create_instruments
from tests.support.backbone import events
from tests.support.backbone import handler_runs
from tests.support.backbone import waiting_dead_letters
from tests.support.booking import request
from tests.support.booking import setup
from tests.support.handlers import RECORDED

KILLS = 20  # of each process
WRITE_EVERY_S = 0.05


@pytest.fixture
def backbone(postgres_database: Database, tmp_path: Path) -> Iterator[Backbone]:
    create_instruments(postgres_database)
    running = Backbone(
        postgres_database, RABBITMQ_URL, tmp_path, nats_url=NATS_URL, extra_env={"TEST_HANDLER_DELAY_S": "0.05"}
    )
    try:
        yield running
    finally:
        running.cleanup()


class Writer(threading.Thread):
    """Books one free hour after another on one resource at a steady rate, until stopped."""

    def __init__(self, database: Database) -> None:
        super().__init__(name="writer", daemon=True)
        self.database = database
        self.stop = threading.Event()
        self.written = 0
        self.organization_id, self.resource_id = setup(database)

    def run(self) -> None:
        while not self.stop.is_set():
            booking_service.place_booking(
                uow=SqlBookingUnitOfWork(self.database),
                request=request(self.organization_id, self.resource_id, self.written),
            )
            self.written += 1
            self.stop.wait(WRITE_EVERY_S)


@pytest.mark.postgres
def test_kill_9_of_relay_and_worker_loses_and_doubles_nothing(backbone: Backbone) -> None:
    database = backbone.database
    rng = random.Random()
    backbone.start_all()
    writer = Writer(database)
    writer.start()
    try:
        for _ in range(KILLS):
            for name in ("relay", "worker"):
                backbone.wait_ready(name)  # a kill lands on a process at work, not one still starting
                time.sleep(rng.uniform(0.2, 1.2))
                backbone.kill(name, signal.SIGKILL)
                backbone.start(name)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.written > 100, "bookings were written throughout"
    assert backbone.starts["relay"] == backbone.starts["worker"] == KILLS + 1

    written = events(database)
    recorded = [e for e in written if e.type in RECORDED]
    backbone.wait_for_drain(
        lambda: backbone.unsettled() + max(0, len(recorded) - len(handler_runs(database))), "the backlog to clear"
    )
    assert all(e.sent_at is not None for e in events(database)), "nothing left unsent"
    runs = Counter(run.event_id for run in handler_runs(database))
    assert runs == Counter({e.id: 1 for e in recorded}), "each handler ran exactly once per event"
    in_stream = Counter(headers["Nats-Msg-Id"] for _, headers in backbone.stream_messages())
    assert in_stream == Counter({e.id: 1 for e in written}), "each event is in JetStream exactly once"
    assert waiting_dead_letters(database) == []
    assert backbone.stop_all() == {"scheduler": 0, "relay": 0, "worker": 0}, backbone.output()
