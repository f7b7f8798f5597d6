"""Handlers the asynchronous tests subscribe through `BOOKWELL_HANDLER_MODULES=tests.support.handlers`.

`record` writes a row per run into `test_handler_runs` inside the job's transaction (so a run that
is killed or fails leaves no row): exactly one row per event proves the handler ran exactly once.
`fails_while_marked` (subscribed when TEST_FAIL_WHILE_EXISTS names a file) fails while that file
exists, for the dead-letter tests. The table lives on its own MetaData,
not Bookwell's: it is the tests' instrument, not part of the schema.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table

from bookwell.platform.db import Database
from bookwell.platform.db import SqlUnitOfWork
from bookwell.platform.kernel.context import current
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.outbox import LoggedEvent

RECORDED = ("resource.created", "booking.created", "booking.confirmed", "booking.cancelled")
FAILING = ("booking.cancelled",)

instruments = MetaData()
runs = Table(
    "test_handler_runs",
    instruments,
    Column("event_id", String(30), nullable=False),
    Column("handler", String(100), nullable=False),
    Column("request_id", String(128)),
    Column("worker_pid", Integer, nullable=False),
)


def register(subscriptions: Subscriptions, database: Database) -> None:
    delay = float(os.environ.get("TEST_HANDLER_DELAY_S", "0"))
    marker = os.environ.get("TEST_FAIL_WHILE_EXISTS")

    def record_run(event: LoggedEvent, handler: str) -> None:
        with SqlUnitOfWork(database) as uow:
            uow.connection.execute(
                runs.insert().values(
                    event_id=event.id,
                    handler=handler,
                    request_id=current().request_id,
                    worker_pid=os.getpid(),
                )
            )
            time.sleep(delay)  # widen the window in which a kill -9 lands mid-handler
            uow.commit()

    def record(event: LoggedEvent) -> None:
        record_run(event, "test.record")

    def fails_while_marked(event: LoggedEvent) -> None:
        if marker and Path(marker).exists():
            raise RuntimeError(f"test handler refuses {event.type} {event.id} while {marker} exists")
        record_run(event, "test.fails_while_marked")

    subscriptions.subscribe("test.record", RECORDED, record)
    if marker:
        subscriptions.subscribe("test.fails_while_marked", FAILING, fails_while_marked)
