"""Databases for the tests: a fresh SQLite file per test, and a fresh PostgreSQL database per session.

Tests that need a service (PostgreSQL, Redis, RabbitMQ, NATS) run whenever it answers at its
BOOKWELL_TEST_<SERVICE>_URL (default: the local one); they are skipped, and the run says so
plainly, when it does not, unless BOOKWELL_TEST_REQUIRE_SERVICES=1 (CI sets it), which turns
the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
REDIS_URL = os.environ.get("BOOKWELL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("BOOKWELL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
NATS_URL = os.environ.get("BOOKWELL_TEST_NATS_URL", "nats://127.0.0.1:4222")
CHROMEDRIVER = os.environ.get("BOOKWELL_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")  # Debian's chromium-driver
PROMTOOL = os.environ.get("BOOKWELL_TEST_PROMTOOL", "promtool")  # Debian's prometheus package
NODE_INTEROP = str(Path(__file__).resolve().parent / "interop" / "node")  # `make test` runs `npm ci` there
SERVICES = {
    "postgresql": POSTGRES_ADMIN_URL,
    "redis": REDIS_URL,
    "rabbitmq": RABBITMQ_URL,
    "nats": NATS_URL,
    "chromium": CHROMEDRIVER,  # a headless browser for the reference page, not a server
    "node": NODE_INTEROP,  # the npm Standard Webhooks verifier, for the webhook interop test
    "promtool": PROMTOOL,  # Prometheus's rule checker and rule unit tests, for the SLO alerts
}
REQUIRE_SERVICES = os.environ.get("BOOKWELL_TEST_REQUIRE_SERVICES") == "1"


def _probe(name: str, url: str) -> str | None:
    """None when the service answers at `url`, else why not."""
    if name == "chromium":
        found = os.access(url, os.X_OK) and shutil.which("chromium") is not None
        return None if found else "no chromium with chromedriver (apt-get install chromium chromium-driver)"
    if name == "promtool":
        return None if shutil.which(url) else "no promtool (apt-get install prometheus)"
    if name == "node":
        installed = Path(url, "node_modules", "standardwebhooks", "package.json").is_file()
        found = installed and shutil.which("node") is not None
        return None if found else "no node with the interop receiver's packages (apt-get install nodejs npm; make test)"
    try:
        if name == "postgresql":
            with psycopg.connect(url, connect_timeout=2):
                return None
        parsed = urlsplit(url)
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=2):
            return None
    except (psycopg.Error, OSError) as error:
        return str(error).strip().splitlines()[0]


_UNAVAILABLE = {name: why for name, url in SERVICES.items() if (why := _probe(name, url)) is not None}


def require_service(*names: str) -> None:
    """Skip the test, loudly, when a service it needs does not answer; fail instead under
    BOOKWELL_TEST_REQUIRE_SERVICES=1 (CI sets it)."""
    for name in names:
        if name in _UNAVAILABLE:
            reason = f"no {name} at {_shown(SERVICES[name])}: {_UNAVAILABLE[name]}"
            if REQUIRE_SERVICES:
                pytest.fail(f"BOOKWELL_TEST_REQUIRE_SERVICES=1 but {reason}")
            pytest.skip(reason)


def _shown(url: str) -> str:
    if "://" not in url:  # a program, or its path
        return url
    if url.startswith("postgresql"):
        return make_url(url).render_as_string(hide_password=True)
    return urlsplit(url).netloc.split("@")[-1]


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run beside a `.env` in the repository's folder: the processes the tests start there
    would read it, and it would fill the settings each test leaves unset on purpose."""
    dotenv = Path(__file__).resolve().parents[1] / ".env"
    if dotenv.exists():
        raise pytest.UsageError(f"{dotenv} would change the settings of the processes the tests start; move it away")


def pytest_report_header() -> list[str]:
    return [
        f"{name} tests: " + (f"SKIPPED ({_UNAVAILABLE[name]})" if name in _UNAVAILABLE else "ON") + f" ({_shown(url)})"
        for name, url in SERVICES.items()
    ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name, why in _UNAVAILABLE.items():
        terminalreporter.write_line(
            f"{name} tests were SKIPPED: {why} ({_shown(SERVICES[name])}).", yellow=True, bold=True
        )


# Tests that are not about rate limits must never meet one (the rate-limit tests set their own).
UNLIMITED = {
    f"rate_limit_{policy}": "1000000/60"
    for policy in ("reads", "writes", "availability", "organization", "auth_failures")
}
UNLIMITED_ENV = {"BOOKWELL_" + name.upper(): value for name, value in UNLIMITED.items()}


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test app on `database_url`; jobs go to an in-process broker unless overridden."""
    values: dict[str, Any] = {"broker_url": "memory://", **UNLIMITED} | overrides
    return Settings(env="test", database_url=database_url, secret_key="test-secret-key-" + "x" * 32, **values)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database created for this test session and dropped after it."""
    require_service("postgresql")
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
