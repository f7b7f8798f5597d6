"""Migrations upgrade, downgrade and upgrade again on SQLite and PostgreSQL, and match the tables in code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from bookwell.cli import alembic_config
from bookwell.platform.db import Database
from bookwell.platform.db import metadata
from bookwell.settings import Settings
from tests.conftest import POSTGRES_ADMIN_URL
from tests.conftest import settings_for


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> Settings:
    return settings_for(f"sqlite:///{tmp_path / 'migrations.db'}")


@pytest.fixture
def empty_postgres(postgres_url: str) -> Iterator[Settings]:
    """A database of its own: the session database is already migrated."""
    name = f"bookwell_migrations_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield settings_for(make_url(postgres_url).set(database=name).render_as_string(hide_password=False))
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest) -> Settings:
    settings: Settings = request.getfixturevalue("empty_sqlite" if request.param == "sqlite" else "empty_postgres")
    return settings


def _tables(settings: Settings) -> set[str]:
    database = Database(settings)
    try:
        return set(inspect(database.engine).get_table_names()) - {"alembic_version"}
    finally:
        database.dispose()


def test_upgrade_downgrade_upgrade(empty_database: Settings) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    assert _tables(empty_database) == set(metadata.tables)
    command.downgrade(config, "base")
    assert _tables(empty_database) == set()
    command.upgrade(config, "head")
    assert _tables(empty_database) == set(metadata.tables)


def test_the_migrated_schema_is_the_schema_in_code(empty_database: Settings) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    database = Database(empty_database)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        database.dispose()
