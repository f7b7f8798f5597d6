"""`bookwell org ...`: organizations are made by operators, never over the public API."""

from __future__ import annotations

import json

import click

from bookwell.identity import service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.kernel.errors import DomainError
from bookwell.platform.kernel.errors import Unavailable
from bookwell.platform.registry import Registry


@click.group()
def org() -> None:
    """Organizations (never created over the public API)."""


@org.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print only {organization_id, api_key} as JSON.")
@click.pass_obj
def org_create(registry: Registry, name: str, as_json: bool) -> None:
    """Create an organization and its first API key, which holds every scope."""
    try:
        organization, token = service.create_organization(uow=registry.unit_of_work(IdentityUnitOfWork)(), name=name)
    except Unavailable:
        raise  # the command's own one line says what to do about a database that cannot be reached
    except DomainError as error:
        raise click.ClickException(error.detail) from error
    if as_json:
        click.echo(json.dumps({"organization_id": organization.id, "api_key": token}))
    else:
        click.echo(f"Organization {organization.id} ({organization.name}) created.")
        click.echo(f"API key (shown once, keep it secret): {token}")
