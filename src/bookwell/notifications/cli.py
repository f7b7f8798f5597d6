"""`bookwell webhooks ...`: a local receiver that verifies what it is sent, and operators' view of deliveries."""

from __future__ import annotations

import json
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import click

from bookwell.notifications import domain
from bookwell.notifications import service
from bookwell.notifications.domain import Delivery
from bookwell.notifications.domain import DeliveryStatus
from bookwell.notifications.ports import Dispatcher
from bookwell.notifications.ports import NotificationsUnitOfWork
from bookwell.platform.kernel.errors import DomainError
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.registry import Registry


@click.group()
def webhooks() -> None:
    """Webhook deliveries: receive and verify them locally, list, retry and replay them."""


@webhooks.command("listen")
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    required=True,
    envvar="WEBHOOK_SECRET",
    help="The endpoint's whsec_ secret (twice during a rotation: either verifies); or WEBHOOK_SECRET,"
    " space-separated, which other users' `ps` does not show.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
def listen(secrets: tuple[str, ...], host: str, port: int) -> None:
    """Receive webhooks, verify each one's signature and print it (Ctrl-C stops)."""
    for secret in secrets:
        try:
            domain.signature(secret, "check", 0, "")
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--secret") from None

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20)).decode("utf-8", errors="replace")
            given = {name.lower(): value for name, value in self.headers.items()}
            problems = []
            for secret in secrets:
                try:
                    message_id = domain.verify(secret, given, body, time.time())
                except domain.InvalidSignature as invalid:
                    problems.append(str(invalid))
                    continue
                self._answer(200, b"ok")
                click.echo(f"verified {message_id} ({_event_type(body)})")
                click.echo(_pretty(body))
                return
            self._answer(400, b"signature does not verify")
            click.echo(f"REFUSED {given.get('webhook-id', '(no webhook-id)')}: {'; '.join(problems)}", err=True)

        def _answer(self, status: int, text: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: one line per delivery is printed above."""

    server = ThreadingHTTPServer((host, port), Receiver)
    click.echo(f"listening on http://{host}:{server.server_address[1]}/ ; every delivery is verified", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _event_type(body: str) -> str:
    try:
        return str(json.loads(body).get("type"))
    except (ValueError, AttributeError):
        return "not JSON"


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def _line(delivery: Delivery) -> str:
    due = "-" if delivery.next_attempt_at is None else delivery.next_attempt_at.isoformat(timespec="seconds")
    return (
        f"{delivery.id} {delivery.event_id} {delivery.event_type} {delivery.status}"
        f" attempts={delivery.attempts} last_status={delivery.last_status_code or '-'} next_attempt_at={due}"
    )


def _organization_of(registry: Registry, endpoint_id: str) -> str:
    with registry.unit_of_work(NotificationsUnitOfWork)(readonly=True) as uow:
        endpoint = uow.endpoints.by_id(endpoint_id)
    if endpoint is None:
        raise click.ClickException(f"no webhook endpoint {endpoint_id}")
    return endpoint.organization_id


@webhooks.command("deliveries")
@click.argument("endpoint_id")
@click.option("--status", type=click.Choice([s.value for s in DeliveryStatus]), help="Only deliveries in this status.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.pass_obj
def deliveries(registry: Registry, endpoint_id: str, status: str | None, limit: int) -> None:
    """An endpoint's deliveries, newest first, one per line."""
    page = service.list_deliveries(
        uow=registry.unit_of_work(NotificationsUnitOfWork)(readonly=True),
        organization_id=_organization_of(registry, endpoint_id),
        endpoint_id=endpoint_id,
        status=None if status is None else DeliveryStatus(status),
        page=PageRequest(limit),
    )
    for found in page.items:
        click.echo(_line(found))


@webhooks.command("retry")
@click.argument("delivery_id")
@click.pass_obj
def retry(registry: Registry, delivery_id: str) -> None:
    """Send a delivery again now, on a fresh schedule."""
    uow = registry.unit_of_work(NotificationsUnitOfWork)
    with uow(readonly=True) as reading:
        found = reading.deliveries.by_id(delivery_id)
    if found is None:
        raise click.ClickException(f"no webhook delivery {delivery_id}")
    again = service.retry_delivery(
        uow=uow(),
        organization_id=found.organization_id,
        delivery_id=delivery_id,
        kick=registry.lookup(Dispatcher).kick,
    )
    click.echo(_line(again))


@webhooks.command("replay")
@click.argument("endpoint_id")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z"]))  # %z takes `Z` too
@click.pass_obj
def replay(registry: Registry, endpoint_id: str, since: datetime) -> None:
    """Send again every event the endpoint takes that was recorded since SINCE (RFC 3339 with an
    offset or `Z`; the log keeps 30 days)."""
    try:
        count = service.replay(
            uow=registry.unit_of_work(NotificationsUnitOfWork)(),
            organization_id=_organization_of(registry, endpoint_id),
            endpoint_id=endpoint_id,
            since=since,
            kick=registry.lookup(Dispatcher).kick,
        )
    except DomainError as error:
        raise click.ClickException(error.detail) from error
    click.echo(f"{count} deliveries due now")
