"""The event log as a service: what `GET /v1/events` pages through and `bookwell events tail` follows."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func
from sqlalchemy import select

from bookwell.platform.db import Database
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.platform.messaging.outbox import event_log
from bookwell.platform.messaging.outbox import outbox

_TAIL_BATCH = 500


class EventLog:
    """Delivered events in delivery order (`position`), read on their own connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def page(self, organization_id: str | None, event_type: str | None, page: PageRequest) -> Page[LoggedEvent]:
        """One page of an organization's events (every organization's with None), after `page.after`."""
        with self._database.engine.connect() as connection:
            return event_log(connection, organization_id, event_type, page)

    def follow(self, poll_interval_s: float, on_event: Callable[[LoggedEvent], bool], *, from_start: bool) -> None:
        """Call `on_event` for each delivered event in order, until it returns False.

        Starts after the newest delivered event unless `from_start`; polls every `poll_interval_s`.
        """
        with self._database.engine.connect() as connection:
            newest = connection.execute(select(func.max(outbox.c.position))).scalar_one()
        after = None if from_start or newest is None else str(newest)
        while True:
            page = self.page(None, None, PageRequest(_TAIL_BATCH, after))
            for event in page.items:
                if not on_event(event):
                    return
                after = str(event.position)
            if not page.has_more:
                time.sleep(poll_interval_s)
