"""The relay in process, on SQLite and PostgreSQL: order, positions, failure handling, the inbox rows it writes.

Publishing and enqueueing are recorded by plain callables here; the end-to-end tests in
`tests/integration/backbone/` run the same relay against real JetStream and brokers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from bookwell.platform.db import Database
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.context import bound
from bookwell.platform.kernel.events import Event
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.messaging.inbox import Delivery
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.inbox import inbox
from bookwell.platform.messaging.inbox import stalled
from bookwell.platform.messaging.outbox import SqlOutbox
from bookwell.platform.messaging.outbox import event_log
from bookwell.platform.messaging.outbox import outbox
from bookwell.platform.messaging.relay import Outgoing
from bookwell.platform.messaging.relay import Relay
from bookwell.platform.messaging.relay import single_relay_lock


class Recorder:
    """Publisher and enqueue in one: remembers what it was given, fails when told to."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.enqueued: list[tuple[Delivery, RequestContext]] = []
        self.fail_publish = False
        self.fail_enqueue = False

    def publish(self, events: Sequence[Outgoing]) -> None:
        if self.fail_publish:
            raise ConnectionError("stream unavailable")
        self.published += [item.event.id for item in events]

    def enqueue(self, delivery: Delivery, context: RequestContext) -> None:
        if self.fail_enqueue:
            raise ConnectionError("broker unavailable")
        self.enqueued.append((delivery, context))


def write(database: Database, *events: Event) -> None:
    with database.engine.begin() as connection:
        for event in events:
            SqlOutbox(connection).add(event)


def event(aggregate: str, kind: str = "thing.happened", org: str = "org_1") -> Event:
    return Event(kind, org, aggregate, {"id": aggregate})


def subscriptions(*types: str) -> Subscriptions:
    subs = Subscriptions()
    subs.subscribe("audit", types or ("thing.happened",), lambda _event: None)
    return subs


def test_a_pass_publishes_records_deliveries_and_positions_in_write_order(database: Database) -> None:
    recorder = Recorder()
    written = [event("agg_a"), event("agg_b"), event("agg_c", kind="other.thing")]
    write(database, *written)
    relay = Relay(database, subscriptions(), recorder.enqueue, recorder, batch_size=10)
    assert relay.relay_once() == 3
    assert relay.relay_once() == 0
    assert recorder.published == [e.id for e in written]
    assert [d.event_id for d, _ in recorder.enqueued] == [written[0].id, written[1].id]  # only subscribed types
    with database.engine.connect() as connection:
        logged = event_log(connection, "org_1", None, PageRequest(10)).items
        statuses = connection.execute(select(inbox.c.status)).scalars().all()
    assert [(e.id, e.position) for e in logged] == [(e.id, i) for i, e in enumerate(written, start=1)]
    assert statuses == ["pending", "pending"]


def test_the_request_context_rides_along(database: Database) -> None:
    recorder = Recorder()
    with bound(RequestContext(request_id="req-42", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")):
        write(database, event("agg_a"))
    Relay(database, subscriptions(), recorder.enqueue, recorder).relay_once()
    assert recorder.enqueued[0][1].carried() == {
        "request_id": "req-42",
        "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    }


def test_a_publish_failure_rolls_the_pass_back(database: Database) -> None:
    recorder = Recorder()
    write(database, event("agg_a"))
    relay = Relay(database, subscriptions(), recorder.enqueue, recorder)
    recorder.fail_publish = True
    with pytest.raises(ConnectionError):
        relay.relay_once()
    with database.engine.connect() as connection:
        assert connection.execute(select(outbox.c.sent_at, outbox.c.position)).one() == (None, None)
        assert connection.execute(select(inbox)).all() == []
    recorder.fail_publish = False
    assert relay.relay_once() == 1


def test_a_lost_enqueue_leaves_the_delivery_pending_until_it_is_redriven(database: Database) -> None:
    recorder = Recorder()
    write(database, event("agg_a"))
    recorder.fail_enqueue = True
    assert Relay(database, subscriptions(), recorder.enqueue, recorder).relay_once() == 1
    with database.engine.connect() as connection:
        assert stalled(connection, utcnow(), timedelta(seconds=60), 10, sent_jobs_held=True) == []
        later = utcnow() + timedelta(seconds=61)
        lost = stalled(connection, later, timedelta(seconds=60), 10, sent_jobs_held=True)
        assert [(item.delivery.handler, item.was_sent) for item in lost] == [("audit", False)]


def test_a_late_commit_is_positioned_after_what_was_delivered_before_it(database: Database) -> None:
    """The gap the event log had: an event with an older id that commits late must not land behind a cursor."""
    recorder = Recorder()
    relay = Relay(database, subscriptions(), recorder.enqueue, recorder)
    early, late = event("agg_early"), event("agg_late")
    assert early.id < late.id
    write(database, late)
    relay.relay_once()
    write(database, early)  # the older id commits last
    relay.relay_once()
    with database.engine.connect() as connection:
        logged = event_log(connection, "org_1", None, PageRequest(10)).items
        assert [e.id for e in logged] == [late.id, early.id]
        after_first = event_log(connection, "org_1", None, PageRequest(10, str(logged[0].position))).items
    assert [e.id for e in after_first] == [early.id]


def test_an_aggregates_later_event_waits_for_its_earlier_one(database: Database) -> None:
    recorder = Recorder()
    first, second, other = event("agg_a"), event("agg_a"), event("agg_b")
    write(database, first)
    write(database, second)
    write(database, other)
    # The first event is claimed elsewhere (its row is held by another relay): simulate by a batch of one.
    relay = Relay(database, subscriptions(), recorder.enqueue, recorder, batch_size=1)
    assert relay.relay_once() == 1
    assert recorder.published == [first.id]
    assert Relay(database, subscriptions(), recorder.enqueue, recorder, batch_size=10).relay_once() == 2
    assert recorder.published == [first.id, second.id, other.id]


@pytest.mark.postgres
def test_relays_share_the_work_without_doubles_and_keep_each_aggregates_order(postgres_database: Database) -> None:
    # Few aggregates and small batches: relays often hold rows of the same aggregate at once.
    aggregates = [f"agg_{n:02d}" for n in range(4)]
    for _ in range(75):
        write(postgres_database, *(event(a) for a in aggregates))
    recorders = [Recorder() for _ in range(4)]
    relays = [Relay(postgres_database, subscriptions(), r.enqueue, r, batch_size=3) for r in recorders]

    def drain(relay: Relay) -> None:
        while relay.relay_once():
            pass

    threads = [threading.Thread(target=drain, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drain(relays[0])  # a pass that found only held-back rows returned 0 early; finish what is left
    published = [event_id for r in recorders for event_id in r.published]
    assert len(published) == len(set(published))
    with postgres_database.engine.connect() as connection:
        rows = connection.execute(select(outbox.c.aggregate_id, outbox.c.seq, outbox.c.position)).all()
    assert len(published) == len(rows)
    assert all(row.position is not None for row in rows)
    assert sorted(row.position for row in rows) == list(range(1, len(rows) + 1))
    for aggregate in aggregates:
        mine = sorted((row.seq, row.position) for row in rows if row.aggregate_id == aggregate)
        assert [position for _, position in mine] == sorted(position for _, position in mine)
    assert sum(1 for r in recorders if r.published) > 1, "the work was shared"


def test_only_one_relay_runs_on_a_sqlite_database(sqlite_database: Database) -> None:
    with single_relay_lock(sqlite_database):
        second = single_relay_lock(sqlite_database)
        with pytest.raises(SystemExit, match="another relay"):
            second.__enter__()
    with single_relay_lock(sqlite_database):
        pass  # released when the first one left


def test_a_redelivered_event_gets_no_second_inbox_row(database: Database) -> None:
    recorder = Recorder()
    write(database, event("agg_a"))
    relay = Relay(database, subscriptions(), recorder.enqueue, recorder)
    relay.relay_once()
    with database.engine.begin() as connection:  # as if the relay had crashed after publishing
        connection.execute(update(outbox).values(sent_at=None, position=None))
    relay.relay_once()
    with database.engine.connect() as connection:
        assert len(connection.execute(select(inbox)).all()) == 1


def test_on_sqlite_a_slow_publish_does_not_hold_the_writer_lock(sqlite_database: Database) -> None:
    """The API must keep writing while JetStream takes its time to acknowledge."""
    publishing, release = threading.Event(), threading.Event()

    class SlowPublisher:
        def publish(self, events: Sequence[Outgoing]) -> None:
            publishing.set()
            release.wait(10)

    write(sqlite_database, event("agg_a"))
    relay = Relay(sqlite_database, subscriptions(), lambda _d, _h: None, SlowPublisher())
    passes = threading.Thread(target=relay.relay_once)
    passes.start()
    try:
        assert publishing.wait(10)
        write(sqlite_database, event("agg_b"))  # would wait for the lock, then fail Busy, if the pass held it
    finally:
        release.set()
        passes.join()
    with sqlite_database.engine.connect() as connection:
        assert connection.execute(
            select(outbox.c.aggregate_id).where(outbox.c.sent_at.is_not(None))
        ).scalars().all() == ["agg_a"]


@pytest.mark.postgres
def test_the_listener_survives_losing_its_connection(postgres_database: Database) -> None:
    from bookwell.platform.messaging.relay import Listener

    dsn = postgres_database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    listener = Listener(dsn, 0.05, threading.Event())
    try:
        listener.wait()  # connects and listens
        with postgres_database.engine.begin() as connection:
            terminated = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid() AND datname = current_database()"
                )
            )
            assert terminated.scalars().all() == [True]
        listener.wait()  # finds the connection gone: logs, falls back to the poll interval
        listener.wait()  # connects again
        write(postgres_database, event("agg_a"))  # NOTIFY reaches the new connection
        assert listener._connection is not None
    finally:
        listener.close()
