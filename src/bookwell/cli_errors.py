"""What an operator can get wrong at the command line, said in one line (`bookwell --debug` keeps
the traceback): the `bookwell` group's `OperatorErrors` turns every failure into `Error: ...` on
stderr and exit status 1."""

from __future__ import annotations

import re
from collections.abc import Callable

import click
import structlog
from alembic.util import CommandError as AlembicError
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import DBAPIError

from bookwell.platform.db import UnsupportedDatabase
from bookwell.platform.kernel.errors import DomainError
from bookwell.platform.kernel.errors import Unavailable
from bookwell.platform.observability.logging import redact

log = structlog.get_logger("bookwell.cli")
DEBUG = "bookwell.debug"  # the click context's meta key: whether `--debug` was given
_MISSING_TABLE = re.compile(r"no such table|relation \"[^\"]+\" does not exist")

_EXPLAINED: list[tuple[Callable[[Exception], bool], Callable[[Exception], str]]] = [
    (
        lambda e: isinstance(e, Unavailable),
        lambda _: "the database cannot be reached: is it running, and is BOOKWELL_DATABASE_URL right?",
    ),
    (
        lambda e: isinstance(e, UnsupportedDatabase),
        lambda e: f"BOOKWELL_DATABASE_URL: {e}; Bookwell runs on sqlite:/// and postgresql://",
    ),
    (
        lambda e: isinstance(e, ArgumentError),
        lambda _: (
            "BOOKWELL_DATABASE_URL is not a database URL (e.g. sqlite:////srv/bookwell/bookwell.db, postgresql://...)"
        ),
    ),
    (
        lambda e: isinstance(e, DBAPIError) and bool(_MISSING_TABLE.search(str(e.orig))),
        lambda _: "the database is not migrated: run `bookwell db upgrade`",
    ),
    (lambda e: isinstance(e, AlembicError), lambda e: f"migrations: {e}"),
    (lambda e: isinstance(e, DomainError), str),
]


def one_line(error: Exception) -> str:
    """What an operator can do about `error`, in one line (the traceback is for `--debug`)."""
    for applies, explain in _EXPLAINED:
        if applies(error):
            return explain(error)
    # Unexplained: the traceback goes to the log (a crashed relay or worker cannot be re-run with --debug).
    log.error("command_failed", exc_info=error)
    detail = " ".join(redact(str(error)).split())[:300]
    return f"{type(error).__name__}: {detail} (run with --debug for the traceback)"


class OperatorErrors(click.Group):
    """Turns what an operator can cause into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            if ctx.meta.get(DEBUG):
                raise
            raise click.ClickException(one_line(error)) from error
