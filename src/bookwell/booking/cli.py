"""`bookwell holds ...`: what an operator can do about holds on slots."""

from __future__ import annotations

import click

from bookwell.booking import service
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.platform.registry import Registry


@click.group()
def holds() -> None:
    """Holds on slots."""


@holds.command("expire")
@click.pass_obj
def holds_expire(registry: Registry) -> None:
    """Mark every pending booking whose hold lapsed as expired (with its event)."""
    total = service.expire_all_holds(uow=registry.unit_of_work(BookingUnitOfWork))
    click.echo(f"expired {total} hold(s)")
