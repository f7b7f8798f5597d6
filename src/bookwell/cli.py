"""The `bookwell` command: database migrations and operator tasks."""

from __future__ import annotations

import json
from pathlib import Path

import click
from alembic import command
from alembic.config import Config

from bookwell.booking import service as booking_service
from bookwell.bootstrap import Container
from bookwell.bootstrap import bootstrap
from bookwell.identity import service as identity_service
from bookwell.platform.idempotency import IdempotencyStore
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.errors import DomainError
from bookwell.platform.logging import configure_logging
from bookwell.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(settings: Settings) -> Config:
    """Alembic's configuration for `settings`' database."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["settings"] = settings
    return config


def _container(ctx: click.Context) -> Container:
    container: Container = ctx.obj
    return container


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Bookwell's command line. Settings come from BOOKWELL_* environment variables."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, stream="stderr")  # stdout is for results
    ctx.obj = bootstrap(settings)
    ctx.call_on_close(ctx.obj.database.dispose)


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    command.upgrade(alembic_config(_container(ctx).settings), revision)


@db.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database down to REVISION (`base` removes everything)."""
    command.downgrade(alembic_config(_container(ctx).settings), revision)


@main.group()
def org() -> None:
    """Organizations (never created over the public API)."""


@org.command("create")
@click.argument("name")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print only {organization_id, api_key} as JSON.",
)
@click.pass_context
def org_create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create an organization and its first API key, which holds every scope."""
    try:
        organization, token = identity_service.create_organization(uow=_container(ctx).identity_uow(), name=name)
    except DomainError as error:
        raise click.ClickException(error.detail) from error
    if as_json:
        click.echo(json.dumps({"organization_id": organization.id, "api_key": token}))
    else:
        click.echo(f"Organization {organization.id} ({organization.name}) created.")
        click.echo(f"API key (shown once, keep it secret): {token}")


@main.group()
def holds() -> None:
    """Holds on slots."""


@holds.command("expire")
@click.pass_context
def holds_expire(ctx: click.Context) -> None:
    """Mark every pending booking whose hold lapsed as expired (with its event)."""
    total = 0
    while expired := booking_service.expire_holds(uow=_container(ctx).booking_uow()):
        total += expired
    click.echo(f"expired {total} hold(s)")


@main.group()
def idempotency() -> None:
    """Idempotency keys."""


@idempotency.command("purge")
@click.pass_context
def idempotency_purge(ctx: click.Context) -> None:
    """Forget idempotency keys older than 24 hours."""
    purged = IdempotencyStore(_container(ctx).database).purge(utcnow())
    click.echo(f"purged {purged} idempotency key(s)")
