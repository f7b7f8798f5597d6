"""A handler that keeps failing: retried with growing, jittered gaps, then dead-lettered, then replayed.

The gaps are read from the recorded attempt times (`job_failures`), not measured by sleeping.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bookwell.platform.db import Database
from bookwell.platform.messaging.inbox import inbox
from bookwell.platform.messaging.jobs.records import job_failures
from tests.conftest import RABBITMQ_URL
from tests.conftest import REDIS_URL
from tests.integration.backbone.test_end_to_end import book_and_cancel
from tests.support.backbone import BOOKWELL
from tests.support.backbone import Backbone
from tests.support.backbone import create_instruments
from tests.support.backbone import handler_runs
from tests.support.backbone import waiting_dead_letters

ATTEMPTS, BASE, CAP = 6, 0.1, 1.0
HANDLER = "test.fails_while_marked"


@pytest.fixture(params=[REDIS_URL, RABBITMQ_URL], ids=["redis", "rabbitmq"])
def failing(
    request: pytest.FixtureRequest, postgres_database: Database, tmp_path: Path
) -> Iterator[tuple[Backbone, Path]]:
    create_instruments(postgres_database)
    marker = tmp_path / "fail"
    marker.touch()
    running = Backbone(
        postgres_database,
        request.param,
        tmp_path,
        extra_env={
            "TEST_FAIL_WHILE_EXISTS": str(marker),
            "BOOKWELL_JOB_MAX_ATTEMPTS": str(ATTEMPTS),
            "BOOKWELL_JOB_BACKOFF_BASE_S": str(BASE),
            "BOOKWELL_JOB_BACKOFF_CAP_S": str(CAP),
            "BOOKWELL_STALL_AFTER_S": "30",  # the retries, not the re-drive, are under test
        },
    )
    try:
        yield running, marker
    finally:
        running.cleanup()


def cli(backbone: Backbone, *args: str) -> str:
    done = subprocess.run([BOOKWELL, *args], env=backbone.env(), capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


@pytest.mark.postgres
def test_a_failing_handler_backs_off_with_jitter_then_dead_letters_and_replay_runs_it_again(
    failing: tuple[Backbone, Path],
) -> None:
    backbone, marker = failing
    database = backbone.database
    backbone.start_all()
    book_and_cancel(database)
    backbone.wait_until(lambda: bool(waiting_dead_letters(database)), 60, "a dead letter")

    (letter,) = waiting_dead_letters(database)
    assert letter.task == "bookwell.deliver"
    assert letter.args[1] == HANDLER
    assert letter.attempts == ATTEMPTS
    assert "refuses booking.cancelled" in letter.last_error
    with database.engine.connect() as connection:
        failures = connection.execute(
            select(job_failures).where(job_failures.c.task_id == letter.task_id).order_by(job_failures.c.attempt)
        ).all()
        status = connection.execute(
            select(inbox.c.status).where(inbox.c.event_id == letter.args[0], inbox.c.handler == HANDLER)
        ).scalar_one()
    assert status == "dead"
    assert [f.attempt for f in failures] == list(range(1, ATTEMPTS + 1))
    assert letter.first_failed_at == failures[0].failed_at
    assert letter.last_failed_at == failures[-1].failed_at

    # Each drawn delay lies in a window that doubles per attempt up to the cap, and the next
    # attempt came no sooner than it (attempt times come from one clock, the database's host).
    windows = [min(CAP, BASE * 2**n) for n in range(ATTEMPTS - 1)]
    delays = [f.retry_in_s for f in failures[:-1]]
    assert failures[-1].retry_in_s is None
    assert windows == sorted(windows)
    assert windows[-1] > windows[0]
    for delay, window in zip(delays, windows, strict=True):
        assert 0 <= delay <= window
    gaps = [(b.failed_at - a.failed_at).total_seconds() for a, b in itertools.pairwise(failures)]
    for gap, delay in zip(gaps, delays, strict=True):
        assert gap >= delay - 0.005, (gaps, delays)
    # Jitter: the delays are not a fixed fraction of their windows (that would be plain backoff).
    assert len({round(delay / window, 6) for delay, window in zip(delays, windows, strict=True)}) > 1

    listed = cli(backbone, "jobs", "dead-letters", "list")
    assert letter.id in listed
    assert HANDLER in listed

    marker.unlink()  # the cause is fixed
    assert cli(backbone, "jobs", "dead-letters", "replay", letter.id).strip() == "replayed 1 dead letter(s)"
    backbone.wait_until(
        lambda: any(run.handler == HANDLER for run in handler_runs(database)), 30, "the replayed job to succeed"
    )
    assert waiting_dead_letters(database) == []
    assert cli(backbone, "jobs", "dead-letters", "list") == ""
    assert "replayed" in cli(backbone, "jobs", "dead-letters", "list", "--all")
    with database.engine.connect() as connection:
        assert (
            connection.execute(
                select(inbox.c.status).where(inbox.c.event_id == letter.args[0], inbox.c.handler == HANDLER)
            ).scalar_one()
            == "done"
        )
    assert [run.handler for run in handler_runs(database)].count(HANDLER) == 1
