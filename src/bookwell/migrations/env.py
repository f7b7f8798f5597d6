"""Alembic environment: migrates the database named by Bookwell's settings."""

from __future__ import annotations

from alembic import context

import bookwell.platform.ratelimit  # noqa: F401 - its tables, which nothing bootstrap imports may reach
from bookwell.bootstrap import bootstrap
from bookwell.platform.db import metadata
from bookwell.settings import Settings

settings = context.config.attributes.get("settings") or Settings.from_env()
database = bootstrap(settings).database

try:
    with database.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=database.dialect == "sqlite",  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    database.dispose()  # a failed migration (an unknown revision, say) leaves no connection open
