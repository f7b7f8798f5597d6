"""What an operator can get wrong at the command line is one line on stderr and exit status 1,
without a traceback unless `--debug` asks for it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result

from bookwell.cli import main as cli
from bookwell.platform.db import Database
from tests.conftest import NATS_URL
from tests.conftest import require_service
from tests.support.net import free_port


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"BOOKWELL_BROKER_URL": "memory://", **env})


@pytest.mark.parametrize(
    ("database_url", "says"),
    [
        ("nonsense", "BOOKWELL_DATABASE_URL is not a database URL"),
        (
            "mysql://x@localhost/bookwell",
            "BOOKWELL_DATABASE_URL: unsupported database URL 'mysql://x@localhost/bookwell'",
        ),
        ("postgresql://postgres@127.0.0.1:{port}/bookwell", "the database cannot be reached"),
        ("sqlite:///{empty}", "the database is not migrated: run `bookwell db upgrade`"),
    ],
)
def test_a_database_setting_gone_wrong_is_one_line(database_url: str, says: str, tmp_path: Path) -> None:
    url = database_url.format(port=free_port(), empty=tmp_path / "empty.db")
    failed = run("holds", "expire", BOOKWELL_DATABASE_URL=url)
    assert failed.exit_code == 1
    line = failed.output.strip().splitlines()[-1]  # before it, at most the log line naming the cause
    assert line.startswith("Error: " + says), line
    assert "Traceback" not in failed.output


def test_an_unknown_revision_is_one_line(database: Database) -> None:
    failed = run("db", "upgrade", "nope", BOOKWELL_DATABASE_URL=database.settings.database_url)
    assert failed.exit_code == 1
    assert failed.output.strip().splitlines()[-1] == "Error: migrations: Can't locate revision identified by 'nope'"


def test_the_traceback_is_for_debug(tmp_path: Path) -> None:
    failed = run("--debug", "holds", "expire", BOOKWELL_DATABASE_URL="nonsense")
    assert failed.exit_code == 1
    assert failed.exception is not None
    assert type(failed.exception).__name__ == "ArgumentError"


def test_tailing_a_stream_that_does_not_exist_yet_says_what_makes_it(database: Database) -> None:
    require_service("nats")
    stream = f"BOOKWELL_TEST_NONE_{uuid.uuid4().hex[:8].upper()}"
    failed = run(
        "events",
        "tail",
        "--count",
        "1",
        BOOKWELL_DATABASE_URL=database.settings.database_url,
        BOOKWELL_NATS_URL=NATS_URL,
        BOOKWELL_NATS_STREAM=stream,
    )
    assert failed.exit_code == 1
    assert (
        failed.output.strip() == f"Error: no stream {stream} yet: the relay makes it when it starts (`bookwell relay`)"
    )


def test_an_empty_dead_letter_list_says_so(database: Database) -> None:
    listed = run("jobs", "dead-letters", "list", BOOKWELL_DATABASE_URL=database.settings.database_url)
    assert (listed.exit_code, listed.stdout) == (0, "")  # the list itself is empty
    assert listed.stderr.strip() == "no dead letters waiting (--all shows replayed ones too)"
