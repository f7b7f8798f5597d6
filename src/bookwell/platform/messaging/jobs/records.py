"""Failed jobs on record: one `job_failures` row per failed attempt, a `dead_letters` row after the last."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Column
from sqlalchemy import Float
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import text

from bookwell.platform.db import UtcDateTime
from bookwell.platform.db import metadata

job_failures = Table(
    "job_failures",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("task", String(200), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", UtcDateTime, nullable=False),
    Column("retry_in_s", Float),  # the drawn delay before the next attempt; NULL for the last one
    Index("ix_job_failures_task_id", "task_id"),
    Index("ix_job_failures_failed_at", "failed_at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("task", String(200), nullable=False),
    Column("args", JSON, nullable=False),
    Column("kwargs", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", UtcDateTime, nullable=False),
    Column("last_failed_at", UtcDateTime, nullable=False),
    Column("replayed_at", UtcDateTime),
    Column("replay_task_id", String(64)),
    Index(
        "ix_dead_letters_waiting",
        "last_failed_at",
        sqlite_where=text("replayed_at IS NULL"),
        postgresql_where=text("replayed_at IS NULL"),
    ),
)


@dataclass(frozen=True)
class DeadLetter:
    """A job that failed its last attempt."""

    id: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    last_error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    replayed_at: datetime | None
