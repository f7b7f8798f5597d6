"""The scheduler's jobs, run in process on both databases: purges keep what is young, re-drive
resends only stalled deliveries, and `events tail` follows the event log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from structlog.testing import capture_logs

from bookwell.bootstrap import bootstrap
from bookwell.cli import main as cli
from bookwell.platform.db import Database
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.events import Event
from bookwell.platform.messaging.inbox import inbox
from bookwell.platform.messaging.inbox import stalled
from bookwell.platform.messaging.jobs.records import dead_letters
from bookwell.platform.messaging.jobs.records import job_failures
from bookwell.platform.messaging.outbox import SqlOutbox
from bookwell.platform.messaging.outbox import outbox
from bookwell.platform.messaging.relay import Relay


@pytest.fixture(autouse=True)
def empty_job_queue(database: Database) -> None:
    """The in-process broker keeps its queues for the whole test run: start each test with none
    waiting (re-drive looks at the queue)."""
    _purge(database)


def _purge(database: Database) -> None:
    jobs = bootstrap(database.settings, database=database).jobs
    with jobs.celery.connection_for_write() as connection:
        connection.default_channel.queue_purge(database.settings.job_queue)


def run_job(database: Database, name: str) -> int:
    container = bootstrap(database.settings, database=database)
    result: int = container.jobs.celery.tasks[name].run()
    return result


def relayed(database: Database, *events: Event, handler: bool = True) -> None:
    container = bootstrap(database.settings, database=database)
    if handler:
        container.subscriptions.subscribe("audit", {e.type for e in events}, lambda _event: None)
    with database.engine.begin() as connection:
        for event in events:
            SqlOutbox(connection).add(event)
    Relay(database, container.subscriptions, lambda _d, _h: None).relay_once()


def count(database: Database, table: object) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_the_outbox_purge_drops_events_delivered_over_30_days_ago_with_their_inbox_rows(database: Database) -> None:
    old, young = Event("thing.happened", "org_1", "agg_1", {}), Event("thing.happened", "org_1", "agg_2", {})
    relayed(database, old, young)
    long_ago = utcnow() - timedelta(days=31)
    with database.engine.begin() as connection:
        connection.execute(update(outbox).where(outbox.c.id == old.id).values(sent_at=long_ago))
        connection.execute(update(inbox).values(status="done"))
        connection.execute(
            job_failures.insert(),
            [
                {"id": f"jf_{n}", "task_id": "t", "task": "x", "attempt": 1, "error": "e", "failed_at": at}
                for n, at in enumerate([long_ago, utcnow()])
            ],
        )
    assert count(database, inbox) == 2
    assert run_job(database, "bookwell.outbox.purge") == 1
    with database.engine.connect() as connection:
        assert connection.execute(select(outbox.c.id)).scalars().all() == [young.id]
        assert connection.execute(select(inbox.c.event_id)).scalars().all() == [young.id]
        assert connection.execute(select(job_failures.c.id)).scalars().all() == ["jf_1"]


def test_an_unsent_event_is_never_purged(database: Database) -> None:
    with database.engine.begin() as connection:
        SqlOutbox(connection).add(Event("thing.happened", "org_1", "agg_1", {}))
        connection.execute(update(outbox).values(created_at=utcnow() - timedelta(days=90)))
    assert run_job(database, "bookwell.outbox.purge") == 0
    assert count(database, outbox) == 1


def test_redrive_resends_only_deliveries_stalled_past_the_grace(database: Database) -> None:
    late, fresh = Event("thing.happened", "org_1", "agg_1", {}), Event("thing.happened", "org_1", "agg_2", {})
    relayed(database, late, fresh)
    grace = timedelta(seconds=database.settings.stall_after_s)
    with database.engine.begin() as connection:
        connection.execute(update(inbox).where(inbox.c.event_id == late.id).values(due_at=utcnow() - 2 * grace))
    assert run_job(database, "bookwell.deliveries.redrive") == 1
    assert run_job(database, "bookwell.deliveries.redrive") == 0, "re-sent deliveries are due again from now"


def test_redrive_leaves_sent_deliveries_to_the_queue_while_jobs_wait_in_it(database: Database) -> None:
    """On a broker that does not redeliver, a sent delivery past due is lost only once nothing waits
    in the queue: behind a backlog it is one of those waiting, and a copy would only lengthen it."""
    waiting = Event("thing.happened", "org_1", "agg_1", {})
    relayed(database, waiting)
    grace = timedelta(seconds=database.settings.stall_after_s)
    with database.engine.begin() as connection:
        connection.execute(update(inbox).values(due_at=utcnow() - 2 * grace))
    container = bootstrap(database.settings, database=database)
    container.jobs.send("bookwell.sagas.sweep")  # a job waiting in the queue: a backlog
    assert run_job(database, "bookwell.deliveries.redrive") == 0
    _purge(database)  # the backlog drained, the delivery still pending: its job died with a worker
    assert run_job(database, "bookwell.deliveries.redrive") == 1


def test_redrive_says_when_the_job_queue_lags(database: Database) -> None:
    waiting, fresh = Event("thing.happened", "org_1", "agg_1", {}), Event("thing.happened", "org_1", "agg_2", {})
    relayed(database, waiting, fresh)
    grace = timedelta(seconds=database.settings.stall_after_s)
    with database.engine.begin() as connection:
        connection.execute(update(inbox).where(inbox.c.event_id == waiting.id).values(due_at=utcnow() - 3 * grace))
    with capture_logs() as lines:
        run_job(database, "bookwell.deliveries.redrive")
    [lagging] = [line for line in lines if line["event"] == "deliveries_lagging"]
    assert lagging["overdue"] == 1
    assert lagging["oldest_overdue_s"] >= 3 * grace.total_seconds()
    with capture_logs() as lines:
        run_job(database, "bookwell.deliveries.redrive")  # re-driven: due again from now
    assert not [line for line in lines if line["event"] == "deliveries_lagging"]


def test_redrive_leaves_a_queued_job_to_a_broker_that_redelivers_and_skips_one_being_run(database: Database) -> None:
    queued, never_sent, running = (Event("thing.happened", "org_1", f"agg_{n}", {}) for n in range(3))
    relayed(database, queued, never_sent, running)
    grace = timedelta(seconds=database.settings.stall_after_s)
    with database.engine.begin() as connection:
        connection.execute(update(inbox).values(due_at=utcnow() - 2 * grace))
        connection.execute(update(inbox).where(inbox.c.event_id == never_sent.id).values(sent_at=None))
    with database.engine.connect() as connection:
        with connection.begin():
            lost = stalled(connection, utcnow(), grace, 10, sent_jobs_held=True)
        assert [(item.delivery.event_id, item.was_sent) for item in lost] == [(never_sent.id, False)]
        with connection.begin():
            lost = stalled(connection, utcnow(), grace, 10, sent_jobs_held=False)
        assert {item.delivery.event_id for item in lost} == {queued.id, never_sent.id, running.id}
    if database.dialect != "postgresql":
        return  # SQLite: a running delivery holds the single writer lock; re-drive cannot run beside it
    with database.engine.connect() as worker, database.engine.connect() as scheduler:
        worker.begin()
        worker.execute(select(inbox.c.status).where(inbox.c.event_id == running.id).with_for_update())
        with scheduler.begin():
            lost = stalled(scheduler, utcnow(), grace, 10, sent_jobs_held=False)
        assert {item.delivery.event_id for item in lost} == {queued.id, never_sent.id}, "a row being run is skipped"
        worker.rollback()


def test_the_timetable_sends_every_job_with_an_expiry_of_its_interval(database: Database) -> None:
    container = bootstrap(database.settings, database=database)
    table = container.timetable()
    assert set(table) <= set(container.jobs.celery.tasks)
    assert table["bookwell.holds.expire"]["schedule"] == 30
    for entry in table.values():
        assert entry["options"]["expires"] == entry["schedule"]


def test_events_tail_follows_the_event_log(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = Event("thing.happened", "org_1", "agg_1", {}), Event("other.thing", "org_2", "agg_2", {})
    relayed(database, first, second, handler=False)
    monkeypatch.setenv("BOOKWELL_DATABASE_URL", database.settings.database_url)
    monkeypatch.setenv("BOOKWELL_BROKER_URL", "memory://")
    result = CliRunner().invoke(cli, ["events", "tail", "--from-start", "--count", "2"])
    assert result.exit_code == 0, result.output
    assert [line.split()[1:] for line in result.output.splitlines()] == [
        ["thing.happened", first.id, "org_1"],
        ["other.thing", second.id, "org_2"],
    ]
    only = CliRunner().invoke(cli, ["events", "tail", "--from-start", "--count", "1", "--org", "org_2"])
    assert only.output.split()[1:] == ["other.thing", second.id, "org_2"]


def test_dead_letter_commands_refuse_unclear_requests(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKWELL_DATABASE_URL", database.settings.database_url)
    monkeypatch.setenv("BOOKWELL_BROKER_URL", "memory://")
    neither = CliRunner().invoke(cli, ["jobs", "dead-letters", "replay"])
    assert neither.exit_code == 2
    assert "either a dead letter ID or --all" in neither.output
    unknown = CliRunner().invoke(cli, ["jobs", "dead-letters", "replay", "dl_nope"])
    assert unknown.exit_code == 1
    assert "no dead letter dl_nope" in unknown.output
    assert count(database, dead_letters) == 0


def test_the_purge_keeps_old_events_whose_deliveries_are_not_done_and_the_newest_event(database: Database) -> None:
    dead, pending, done, newest = (Event("thing.happened", "org_1", f"agg_{n}", {}) for n in range(4))
    relayed(database, dead, pending, done, newest)
    with database.engine.begin() as connection:
        connection.execute(update(outbox).values(sent_at=utcnow() - timedelta(days=31)))
        connection.execute(update(inbox).where(inbox.c.event_id == dead.id).values(status="dead"))
        connection.execute(update(inbox).where(inbox.c.event_id.in_([done.id, newest.id])).values(status="done"))
    assert run_job(database, "bookwell.outbox.purge") == 1
    with database.engine.connect() as connection:
        kept = set(connection.execute(select(outbox.c.id)).scalars())
    assert kept == {dead.id, pending.id, newest.id}, "positions and seq must never restart from 1"


def test_a_replay_the_broker_refuses_leaves_the_dead_letter_waiting(database: Database) -> None:
    event = Event("thing.happened", "org_1", "agg_1", {})
    relayed(database, event)
    now = utcnow()
    with database.engine.begin() as connection:
        connection.execute(update(inbox).values(status="dead"))
        connection.execute(
            dead_letters.insert().values(
                id="dl_1",
                task_id="t1",
                task="bookwell.deliver",
                args=[event.id, "audit"],
                kwargs={},
                headers={},
                last_error="boom",
                attempts=8,
                first_failed_at=now,
                last_failed_at=now,
            )
        )
    down = database.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0", "readyz_timeout_s": 0.5})
    jobs = bootstrap(down, database=database).jobs
    jobs.celery.conf.broker_connection_max_retries = 0
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever kombu raises for a refused connection
        jobs.replay("dl_1")
    with database.engine.connect() as connection:
        assert connection.execute(select(dead_letters.c.replayed_at)).scalar_one() is None
        assert connection.execute(select(inbox.c.status)).scalar_one() == "dead"


def test_every_scheduled_job_can_be_sent_as_the_scheduler_sends_it_with_no_arguments(database: Database) -> None:
    """Celery checks a task's arguments against its function: a bound method given to `schedule`
    (the webhook dispatch is one) must still take none."""
    container = bootstrap(database.settings, database=database)
    for name in container.scheduled:
        task = container.jobs.celery.tasks[name]
        task.apply_async(args=[])  # as beat sends it: TypeError if it wanted an argument
    _purge(database)  # what it sent waits in the in-process broker, which outlives the test
