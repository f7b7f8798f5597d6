"""Databases for the tests: a fresh SQLite file per test, and a fresh PostgreSQL database per session.

PostgreSQL tests run whenever a server answers at BOOKWELL_TEST_POSTGRES_URL (default: the local
one on 127.0.0.1:5432); they are skipped, and the run says so plainly, when none does, unless
BOOKWELL_TEST_REQUIRE_POSTGRES=1 (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bookwell.cli import alembic_config
from bookwell.platform.db import Database
from bookwell.platform.db import metadata
from bookwell.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get("BOOKWELL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("BOOKWELL_TEST_REQUIRE_POSTGRES") == "1"
_postgres_error: list[str] = []


def _postgres_reachable() -> bool:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2):
            return True
    except psycopg.Error as error:
        _postgres_error.append(str(error).strip().splitlines()[0])
        return False


POSTGRES_AVAILABLE = _postgres_reachable()


def pytest_report_header() -> str:
    where = make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)
    if POSTGRES_AVAILABLE:
        return f"PostgreSQL tests: ON ({where})"
    return f"PostgreSQL tests: SKIPPED, no server at {where} ({_postgres_error[0]})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not POSTGRES_AVAILABLE:
        terminalreporter.write_line(
            "PostgreSQL tests were SKIPPED: no server answered at BOOKWELL_TEST_POSTGRES_URL.", yellow=True, bold=True
        )


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test app on `database_url`; jobs go to an in-process broker unless overridden."""
    values: dict[str, Any] = {"broker_url": "memory://"} | overrides
    return Settings(env="test", database_url=database_url, secret_key="test-secret-key-" + "x" * 32, **values)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database created for this test session and dropped after it."""
    if not POSTGRES_AVAILABLE:
        reason = f"no PostgreSQL server at {POSTGRES_ADMIN_URL}"
        if REQUIRE_POSTGRES:
            pytest.fail(f"BOOKWELL_TEST_REQUIRE_POSTGRES=1 but {reason}: {_postgres_error[0]}")
        pytest.skip(reason)
    name = f"bookwell_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> Iterator[Database]:
    """The session's PostgreSQL database at the newest migration."""
    settings = settings_for(postgres_url)
    command.upgrade(alembic_config(settings), "head")
    database = Database(settings)
    yield database
    database.dispose()


def _empty(database: Database) -> None:
    with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            names = ", ".join(table.name for table in metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names}"))
        else:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite file of this test's own."""
    settings = settings_for(f"sqlite:///{tmp_path / 'bookwell.db'}")
    command.upgrade(alembic_config(settings), "head")
    database = Database(settings)
    yield database
    database.dispose()


@pytest.fixture
def postgres_database(migrated_postgres: Database) -> Database:
    """The session's PostgreSQL database, emptied before the test."""
    _empty(migrated_postgres)
    return migrated_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Database:
    """Each test that takes it runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    db: Database = request.getfixturevalue(fixture)
    return db
