"""The `bookwell` command: database migrations and operator tasks."""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import click
import structlog
from alembic import command
from alembic.config import Config
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from bookwell.bootstrap import bootstrap
from bookwell.cli_errors import DEBUG
from bookwell.cli_errors import OperatorErrors
from bookwell.contexts import registrations
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.idempotency import IdempotencyStore
from bookwell.platform.kernel.clock import rfc3339
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.errors import NotFound
from bookwell.platform.messaging.event_log import EventLog
from bookwell.platform.messaging.jetstream import JetStream
from bookwell.platform.messaging.relay import Relay
from bookwell.platform.messaging.relay import single_relay_lock
from bookwell.platform.observability import exporter
from bookwell.platform.observability import tracing
from bookwell.platform.observability.exporter import Reading
from bookwell.platform.observability.logging import configure_logging
from bookwell.platform.ratelimit import Policy
from bookwell.platform.ratelimit import PolicyResolver
from bookwell.platform.ratelimit import clear_override
from bookwell.platform.ratelimit import default_policies
from bookwell.platform.ratelimit import list_overrides
from bookwell.platform.ratelimit import set_override
from bookwell.platform.registry import Registry
from bookwell.settings import RATE_LIMIT_POLICIES
from bookwell.settings import Settings
from bookwell.settings import SettingsProblem

MIGRATIONS = Path(__file__).resolve().parent / "migrations"  # package data: a wheel has them too
log = structlog.get_logger("bookwell.cli")


def alembic_config(settings: Settings) -> Config:
    """Alembic's configuration for `settings`' database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["settings"] = settings
    return config


def _container(ctx: click.Context) -> Registry:
    container: Registry = ctx.obj
    return container


@click.group(cls=OperatorErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bookwell", message="bookwell %(version)s")
@click.option("--debug", is_flag=True, help="Show the traceback of a failure.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Bookwell's command line. Settings come from BOOKWELL_* environment variables."""
    ctx.meta[DEBUG] = debug
    try:
        settings = Settings.from_env()
    except ValidationError as error:
        problems = "; ".join(f"BOOKWELL_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        raise click.ClickException(f"invalid settings: {problems}") from error
    except SettingsProblem as error:
        raise click.ClickException(f"invalid settings: {error}") from error
    configure_logging(settings.log_level, stream="stderr", fmt=settings.log_format)  # stdout is for results
    try:
        ctx.obj = bootstrap(settings)
    except ImportError as error:
        raise click.ClickException(f"BOOKWELL_HANDLER_MODULES: cannot import {error.name}") from error
    ctx.call_on_close(ctx.obj.database.dispose)


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    container = _container(ctx)
    command.upgrade(alembic_config(container.settings), revision)
    log.info("database_migrated", database=container.database.location, revision=revision)


@db.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database down to REVISION (`base` removes everything)."""
    command.downgrade(alembic_config(_container(ctx).settings), revision)


@main.group()
def idempotency() -> None:
    """Idempotency keys."""


@idempotency.command("purge")
@click.pass_context
def idempotency_purge(ctx: click.Context) -> None:
    """Forget idempotency keys older than 24 hours."""
    purged = IdempotencyStore(_container(ctx).database).purge(utcnow())
    click.echo(f"purged {purged} idempotency key(s)")


@main.group("rate-limits")
def rate_limits() -> None:
    """Rate-limit policies: the defaults from settings, and organizations' own quotas."""


_ORGANIZATION_POLICIES = [name for name in RATE_LIMIT_POLICIES if name != "auth_failures"]  # that one is per address


@rate_limits.command("list")
@click.option("--org", "organization_id", help="The policies in force for this organization.")
@click.pass_context
def rate_limits_list(ctx: click.Context, organization_id: str | None) -> None:
    """The default policies and every override, or the policies in force for one organization."""
    container = _container(ctx)
    if organization_id is None:
        for policy in default_policies(container.settings).values():
            click.echo(f"default {policy.name} {policy.quota}/{policy.window_s}")
        for override in list_overrides(container.database):
            click.echo(
                f"{override.organization_id} {override.policy.name} {override.policy.quota}/{override.policy.window_s}"
            )
        return
    own = {o.policy.name for o in list_overrides(container.database, organization_id)}
    resolver = PolicyResolver(container.database, container.settings, cache_s=0)
    for policy in resolver.policies_for(organization_id).values():
        source = "override" if policy.name in own else "default"
        click.echo(f"{organization_id} {policy.name} {policy.quota}/{policy.window_s} ({source})")


@rate_limits.command("set")
@click.argument("organization_id")
@click.argument("policy", type=click.Choice(_ORGANIZATION_POLICIES))
@click.argument("limit", metavar="QUOTA/WINDOW_S")
@click.pass_context
def rate_limits_set(ctx: click.Context, organization_id: str, policy: str, limit: str) -> None:
    """Give an organization its own quota for a policy, e.g. `set org_... writes 600/60`."""
    container = _container(ctx)
    try:
        quota = Policy.parse(policy, limit)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="QUOTA/WINDOW_S") from error
    _existing_organization(container, organization_id)
    set_override(container.database, organization_id, quota)
    click.echo(f"{organization_id} {policy} is now {quota.quota} per {quota.window_s} s (in force within seconds)")


@rate_limits.command("clear")
@click.argument("organization_id")
@click.argument("policy", type=click.Choice(_ORGANIZATION_POLICIES))
@click.pass_context
def rate_limits_clear(ctx: click.Context, organization_id: str, policy: str) -> None:
    """Return an organization to the default quota for a policy."""
    if not clear_override(_container(ctx).database, organization_id, policy):
        raise click.ClickException(f"{organization_id} has no override for {policy}")
    click.echo(f"{organization_id} {policy} is back to the default")


def _existing_organization(container: Registry, organization_id: str) -> None:
    try:
        identity_service.get_organization(
            uow=container.unit_of_work(IdentityUnitOfWork)(readonly=True), organization_id=organization_id
        )
    except NotFound as error:
        raise click.ClickException(f"no organization {organization_id}") from error


def _started(process: str, container: Registry, **details: object) -> None:
    """Say where a process's data and jobs are (the embedded defaults are absolute paths, so a
    command run from another folder finds the same ones)."""
    settings = container.settings
    log.info(f"{process}_started", database=container.database.location, broker=settings.broker_url, **details)


def _observed(process: str, container: Registry, metrics_bind: str, readings: Sequence[Reading] = ()) -> None:
    """Serve the process's metrics and start its tracing (when a collector is configured)."""
    exporter.serve(process, metrics_bind, readings)
    tracing.start(process, container.settings.trace_sample_ratio)


def _stop_on_sigterm(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT ask the process to finish what it holds and exit."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop())


@main.command("relay")
@click.pass_context
def relay(ctx: click.Context) -> None:
    """Deliver committed events to JetStream (when configured) and to internal handlers, until SIGTERM."""
    container = _container(ctx)
    settings = container.settings
    with single_relay_lock(container.database):
        publisher = _jetstream(settings, create_stream=True) if settings.nats_url else None
        relay = Relay(
            container.database,
            container.subscriptions,
            container.jobs.enqueue,
            publisher,
            batch_size=settings.relay_batch_size,
            poll_interval_s=settings.relay_poll_interval_s,
            meter=container.count_relayed,
        )
        _stop_on_sigterm(relay.stopping.set)
        _observed("relay", container, settings.relay_metrics_bind)
        _started("relay", container, jetstream=publisher is not None)
        try:
            relay.run()
        finally:
            if publisher is not None:
                publisher.close()
        log.info("relay_stopped")


@main.command("worker")
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run jobs from the broker until SIGTERM (running jobs finish first)."""
    container = _container(ctx)
    _started("worker", container)
    _observed("worker", container, container.settings.worker_metrics_bind)
    container.jobs.run_worker()


@main.command("scheduler")
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Send the scheduled jobs (holds, purges, re-drive) on time, until SIGTERM."""
    container = _container(ctx)
    _started("scheduler", container)
    _observed("scheduler", container, container.settings.scheduler_metrics_bind, container.readings)
    container.jobs.run_scheduler(container.timetable())


@main.group()
def jobs() -> None:
    """Background jobs."""


@jobs.group("dead-letters")
def dead_letters() -> None:
    """Jobs that failed their last attempt."""


@dead_letters.command("list")
@click.option("--all", "include_replayed", is_flag=True, help="Include those already replayed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def dead_letters_list(ctx: click.Context, include_replayed: bool, as_json: bool) -> None:
    """List dead letters, newest first."""
    letters = _container(ctx).jobs.dead_letters(include_replayed=include_replayed)
    if not letters and not as_json:
        # On stderr: stdout holds the list, and an empty list is empty for a script that reads it.
        click.echo(
            "no dead letters" + ("" if include_replayed else " waiting (--all shows replayed ones too)"), err=True
        )
    for letter in letters:
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(letter), default=str))
        else:
            replayed = f" replayed {rfc3339(letter.replayed_at)}" if letter.replayed_at else ""
            click.echo(
                f"{letter.id} {letter.task} {json.dumps(letter.args)} attempts={letter.attempts} "
                f"first={rfc3339(letter.first_failed_at)} last={rfc3339(letter.last_failed_at)}{replayed}\n"
                f"    {letter.last_error}"
            )


@dead_letters.command("replay")
@click.argument("dead_letter_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter not yet replayed.")
@click.pass_context
def dead_letters_replay(ctx: click.Context, dead_letter_id: str | None, replay_all: bool) -> None:
    """Send a dead letter's job again (ID), or every waiting one (--all)."""
    if (dead_letter_id is None) == (not replay_all):
        raise click.UsageError("give either a dead letter ID or --all")
    jobs_ = _container(ctx).jobs
    if dead_letter_id is not None:
        if jobs_.replay(dead_letter_id) is None:
            raise click.ClickException(f"no dead letter {dead_letter_id} waiting to be replayed")
        replayed = 1
    else:  # one that another operator replayed meanwhile is skipped
        replayed = sum(jobs_.replay(letter.id) is not None for letter in jobs_.dead_letters(limit=10_000))
    click.echo(f"replayed {replayed} dead letter(s)")


@main.group()
def events() -> None:
    """The event stream."""


@events.command("tail")
@click.option("--org", "organization_id", help="Only this organization's events.")
@click.option("--from-start", is_flag=True, help="Begin with the oldest kept event, not the next new one.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many events.")
@click.pass_context
def events_tail(ctx: click.Context, organization_id: str | None, from_start: bool, count: int | None) -> None:
    """Print events as they arrive: from JetStream when BOOKWELL_NATS_URL is set, else from the event log."""
    container = _container(ctx)
    settings = container.settings
    seen = 0

    def show(event: dict[str, object], organization: str) -> bool:
        nonlocal seen
        if organization_id is not None and organization != organization_id:
            return True
        click.echo(f"{event['created_at']} {event['type']} {event['id']} {organization}")
        seen += 1
        return count is None or seen < count

    try:
        if settings.nats_url:
            stream = _jetstream(settings, create_stream=False)
            try:
                stream.tail(lambda event, _headers: show(event, str(event["organization_id"])), from_start=from_start)
            except NotFoundError as error:
                raise click.ClickException(
                    f"no stream {settings.nats_stream} yet: the relay makes it when it starts (`bookwell relay`)"
                ) from error
            finally:
                stream.close()
        else:
            tail = EventLog(container.database)
            tail.follow(
                settings.relay_poll_interval_s, lambda e: show(e.as_dict(), e.organization_id), from_start=from_start
            )
    except KeyboardInterrupt:
        pass


def _jetstream(settings: Settings, *, create_stream: bool) -> JetStream:
    """A JetStream connection, or a clear error (no traceback) when NATS cannot be reached."""
    assert settings.nats_url is not None
    try:
        return JetStream(
            settings.nats_url,
            stream=settings.nats_stream,
            subject_prefix=settings.nats_subject_prefix,
            duplicate_window_s=settings.nats_duplicate_window_s,
            create_stream=create_stream,
        )
    except Exception as error:
        where = urlsplit(settings.nats_url).netloc.split("@")[-1]
        raise click.ClickException(
            f"cannot use JetStream at {where}: {type(error).__name__} {error}".strip()
        ) from error


@main.command("provider-sim")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
def provider_sim(host: str, port: int) -> None:
    """Run the payment-provider simulator (the HTTP provider's wire format, with faults on demand)."""
    from bookwell_tools.provider_sim import serve

    serve(host, port)


@main.command("seed")
@click.option("--organizations", type=click.IntRange(1), default=100, show_default=True)
@click.option("--resources", type=click.IntRange(1), default=1_000, show_default=True)
@click.option("--bookings", "bookings_count", type=click.IntRange(0), default=1_000_000, show_default=True)
@click.pass_context
def seed(ctx: click.Context, organizations: int, resources: int, bookings_count: int) -> None:
    """Add a large dataset for benchmarks: organizations, their resources, a year of bookings.

    Prints the new organizations' ids and API keys, their resources' ids, as JSON on stdout.
    """
    from bookwell_tools.seed import seed as load

    try:
        made = load(
            _container(ctx).database, organizations=organizations, resources=resources, bookings_count=bookings_count
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    click.echo(json.dumps(made.as_dict()))


for _registration in registrations():
    for _command in _registration.commands:
        main.add_command(_command)
