"""Webhook deliveries over real HTTP to receivers on 127.0.0.1: every one verifies with the reference
verifiers (PyPI's `standardwebhooks` and npm's), through a secret rotation; the schedule, 410 and
auto-disable under a controlled clock; `bookwell webhooks listen` verifying a test event."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import select

from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.notifications import domain
from bookwell.notifications.adapters.sql import webhook_attempts
from bookwell.notifications.adapters.sql import webhook_deliveries
from bookwell.notifications.tasks import Webhooks
from bookwell.platform.db import Database
from bookwell.platform.messaging.outbox import outbox
from bookwell.platform.messaging.relay import Relay
from bookwell.platform.registry import Registry
from tests.api.conftest import RESOURCE
from tests.api.conftest import Api
from tests.conftest import require_service
from tests.support.net import free_port
from tests.support.webhooks import NodeReceiver
from tests.support.webhooks import Receiver
from tests.support.webhooks import attempt_at_once

pytestmark = pytest.mark.postgres
EVENTS = 200


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Hooks:
    api: Api
    container: Registry
    webhooks: Webhooks

    def deliver(self) -> None:
        """Relay every event (handlers run at once, as a worker would), then attempt whatever is due
        until nothing is (each attempt made at once where the worker would take its job)."""
        jobs = self.container.jobs
        relay = Relay(
            self.container.database, self.container.subscriptions, lambda d, _c: jobs.deliver(d.event_id, d.handler)
        )
        while relay.relay_once():
            pass
        while self.webhooks.dispatch():
            pass


@pytest.fixture
def hooks(postgres_database: Database) -> Iterator[Hooks]:
    settings = postgres_database.settings.model_copy(update={"webhook_allowed_networks": "127.0.0.0/8"})
    container = bootstrap(settings, database=postgres_database)
    app: Flask = create_app(settings, container=container)
    _, token = identity_service.create_organization(uow=container.unit_of_work(IdentityUnitOfWork)(), name="Hooks")
    webhooks = attempt_at_once(container)
    yield Hooks(Api(app.test_client(), token), container, webhooks)
    webhooks.sender.close()


def endpoint(api: Api, url: str, event_types: list[str] | None = None) -> dict[str, Any]:
    response = api.post("/v1/webhook-endpoints", json={"url": url, "event_types": event_types or ["*"]})
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def make_events(api: Api, count: int) -> None:
    """`count` events: resources created, then updated."""
    created = [api.post("/v1/resources", json=RESOURCE).get_json()["id"] for _ in range((count + 1) // 2)]
    for resource_id in created[: count // 2]:
        response = api.patch(f"/v1/resources/{resource_id}", json={"capacity": 2}, headers={"If-Match": '"v1"'})
        assert response.status_code == 200


def event_ids(database: Database) -> list[str]:
    with database.engine.connect() as connection:
        return list(connection.execute(select(outbox.c.id).order_by(outbox.c.seq)).scalars())


def test_every_delivery_verifies_with_both_reference_verifiers_through_a_rotation(hooks: Hooks) -> None:
    require_service("node")
    python = Receiver()
    node_port = free_port()
    to_python = endpoint(hooks.api, python.url)
    to_node = endpoint(hooks.api, f"http://127.0.0.1:{node_port}/hook")
    python.secrets = [to_python["secret"]]
    node = NodeReceiver(node_port, [to_node["secret"]])
    try:
        make_events(hooks.api, EVENTS)
        hooks.deliver()
        events = event_ids(hooks.container.database)
        assert len(events) == EVENTS
        assert sorted(seen[0] for seen in python.seen) == sorted(events)
        assert all(seen[1] == [0] for seen in python.seen)
        by_node = node.received()
        assert sorted(line["id"] for line in by_node) == sorted(events)
        assert all(line["verified_by"] == [0] for line in by_node)

        # A rotation: for the grace period every delivery verifies with the old secret and with the new.
        python_new = hooks.api.post(f"/v1/webhook-endpoints/{to_python['id']}/rotate-secret").get_json()["secret"]
        node_new = hooks.api.post(f"/v1/webhook-endpoints/{to_node['id']}/rotate-secret").get_json()["secret"]
        python.secrets.append(python_new)
        node.stop()
        node = NodeReceiver(node_port, [to_node["secret"], node_new])
        python.seen.clear()
        make_events(hooks.api, 10)
        hooks.deliver()
        assert len(python.seen) == 10
        assert all(seen[1] == [0, 1] for seen in python.seen)
        rotated = node.received()
        assert len(rotated) == 10
        assert all(line["verified_by"] == [0, 1] for line in rotated)

        # Refusals by the npm verifier: a tampered body, a stale timestamp, another secret.
        body = '{"id":"evt_x","type":"resource.created"}'
        now = int(time.time())
        for secret, stamp, sent in (
            (node_new, now, body.replace("created", "deleted")),
            (node_new, now - 301, body),
            (domain.derive_secret("another-key-" + "k" * 32, "salt"), now, body),
        ):
            headers = domain.headers([secret], "evt_x", stamp, body)
            answer = httpx.post(f"http://127.0.0.1:{node_port}/hook", content=sent, headers=headers)
            assert answer.status_code == 400
        assert [line["verified_by"] for line in _wait_lines(node, 3)] == [[], [], []]
    finally:
        node.stop()
        python.close()


def _wait_lines(node: NodeReceiver, count: int) -> list[dict[str, Any]]:
    lines = []
    deadline = time.monotonic() + 10
    while len(lines) < count and time.monotonic() < deadline:
        lines += node.received()
        time.sleep(0.01)
    return lines


def _attempts(database: Database, delivery_id: str) -> list[Any]:
    with database.engine.connect() as connection:
        return list(
            connection.execute(
                select(webhook_attempts).where(webhook_attempts.c.delivery_id == delivery_id).order_by("number")
            )
        )


def _controlled(hooks: Hooks) -> Clock:
    clock = Clock(datetime.now(UTC))
    hooks.webhooks.clock = clock
    return clock


def _step_to_next_due(hooks: Hooks, clock: Clock) -> bool:
    """Move the clock to the next pending delivery's due time and dispatch; False when none is pending."""
    with hooks.container.database.engine.connect() as connection:
        due = connection.execute(
            select(webhook_deliveries.c.next_attempt_at)
            .where(webhook_deliveries.c.status == "pending")
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(1)
        ).scalar_one_or_none()
    if due is None:
        return False
    clock.now = max(clock.now, due)
    hooks.webhooks.dispatch()
    return True


def test_a_failing_delivery_is_retried_inside_its_jittered_windows_then_dead(hooks: Hooks) -> None:
    receiver = Receiver(status=500)
    clock = _controlled(hooks)
    hooks.webhooks.disable_after = timedelta(days=30)  # not disabled meanwhile: this is about one delivery
    try:
        made = endpoint(hooks.api, receiver.url, ["resource.created"])
        hooks.api.post("/v1/resources", json=RESOURCE)
        hooks.deliver()
        while _step_to_next_due(hooks, clock):
            pass
        (delivery,) = hooks.api.get(f"/v1/webhook-endpoints/{made['id']}/deliveries").get_json()["data"]
        assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("dead", 10, 500)
        attempts = _attempts(hooks.container.database, delivery["id"])
        gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(attempts)]
        for gap, base in zip(gaps, domain.RETRY_SCHEDULE_S, strict=True):
            assert base * 0.9 - 1 <= gap <= base * 1.1 + 1
        assert len(receiver.seen) == 10
        assert len({seen[0] for seen in receiver.seen}) == 1  # the same webhook-id on every attempt
        shown = hooks.api.get(f"/v1/webhook-deliveries/{delivery['id']}").get_json()
        assert [a["status_code"] for a in shown["attempt_log"]] == [500] * 10
        assert hooks.api.get(f"/v1/webhook-endpoints/{made['id']}").get_json()["active"] is True
    finally:
        receiver.close()


def test_410_disables_the_endpoint_at_once_with_an_event(hooks: Hooks) -> None:
    receiver = Receiver(status=410)
    try:
        made = endpoint(hooks.api, receiver.url, ["resource.*"])
        watcher = endpoint(hooks.api, "https://partner.example/hooks", ["webhook_endpoint.disabled"])
        hooks.api.post("/v1/resources", json=RESOURCE)
        hooks.deliver()
        found = hooks.api.get(f"/v1/webhook-endpoints/{made['id']}").get_json()
        assert (found["active"], found["disabled_reason"]) == (False, "gone")
        (delivery,) = hooks.api.get(f"/v1/webhook-endpoints/{made['id']}/deliveries").get_json()["data"]
        assert delivery["status"] == "dead"
        events = hooks.api.get("/v1/events?type=webhook_endpoint.disabled").get_json()["data"]
        assert [e["data"]["object"]["id"] for e in events] == [made["id"]]
        assert "secret" not in events[0]["data"]["object"]
        to_watcher = hooks.api.get(f"/v1/webhook-endpoints/{watcher['id']}/deliveries").get_json()["data"]
        assert [d["event_type"] for d in to_watcher] == ["webhook_endpoint.disabled"]
        # Nothing more goes to a disabled endpoint; re-enabling it sends what waits.
        hooks.api.post("/v1/resources", json=RESOURCE)
        hooks.deliver()
        assert len(receiver.seen) == 1
        receiver.status = 204
        receiver.secrets = [made["secret"]]
        enabled = hooks.api.patch(
            f"/v1/webhook-endpoints/{made['id']}", json={"active": True}, headers={"If-Match": '"v2"'}
        )
        assert (enabled.get_json()["active"], enabled.get_json()["disabled_reason"]) == (True, None)
        retried = hooks.api.post(f"/v1/webhook-deliveries/{delivery['id']}/retry")
        assert retried.status_code == 202
        hooks.deliver()
        assert [seen[1] for seen in receiver.seen[1:]] == [[0]]
    finally:
        receiver.close()


def test_five_days_of_failure_disable_an_endpoint(hooks: Hooks) -> None:
    receiver = Receiver(status=503)
    clock = _controlled(hooks)
    try:
        made = endpoint(hooks.api, receiver.url, ["resource.*"])
        start = clock.now
        hooks.api.post("/v1/resources", json=RESOURCE)
        hooks.deliver()
        while clock.now - start < timedelta(days=7):
            if hooks.api.get(f"/v1/webhook-endpoints/{made['id']}").get_json()["active"] is False:
                break
            if not _step_to_next_due(hooks, clock):
                clock.now += timedelta(hours=12)
                hooks.api.post("/v1/resources", json=RESOURCE)  # a new event keeps the endpoint in use
                hooks.deliver()
        found = hooks.api.get(f"/v1/webhook-endpoints/{made['id']}").get_json()
        assert (found["active"], found["disabled_reason"]) == (False, "failing")
        # Disabled by the first failed attempt after five days (retries are hours apart by then).
        assert timedelta(days=5) <= clock.now - start < timedelta(days=6, hours=12)
    finally:
        receiver.close()


def test_bookwell_webhooks_listen_verifies_and_prints_a_test_event(hooks: Hooks) -> None:
    port = free_port()
    made = endpoint(hooks.api, f"http://127.0.0.1:{port}/")
    listener = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "bookwell"),
            "webhooks",
            "listen",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "BOOKWELL_DATA_DIR": str(Path(hooks.container.settings.data_dir)),
            "WEBHOOK_SECRET": made["secret"],  # as the tour passes it
        },
    )
    try:
        _wait_listening(listener, port)
        sent = hooks.api.post(f"/v1/webhook-endpoints/{made['id']}/test").get_json()
        hooks.deliver()
        shown = hooks.api.get(f"/v1/webhook-deliveries/{sent['id']}").get_json()
        assert (shown["status"], shown["last_status_code"]) == ("succeeded", 200)
        forged = httpx.post(
            f"http://127.0.0.1:{port}/",
            content="{}",
            headers=domain.headers([domain.derive_secret("k" * 40, "x")], "evt_forged", int(time.time()), "{}"),
        )
        assert forged.status_code == 400
    finally:
        listener.terminate()
        out, err = listener.communicate(timeout=10)
    assert f"verified {sent['event_id']} (webhook.test)" in out
    assert "REFUSED evt_forged" in err
    assert "not a setting" not in err  # WEBHOOK_SECRET is the command's, not a BOOKWELL_ setting


def _wait_listening(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("bookwell webhooks listen did not start")


def test_a_redirect_is_a_failed_attempt_and_never_followed(hooks: Hooks) -> None:
    inside = Receiver()  # where the redirect points: it must hear nothing
    redirecting = Receiver(status=302, location=inside.url)
    try:
        made = endpoint(hooks.api, redirecting.url, ["resource.created"])
        hooks.api.post("/v1/resources", json=RESOURCE)
        hooks.deliver()
        (delivery,) = hooks.api.get(f"/v1/webhook-endpoints/{made['id']}/deliveries").get_json()["data"]
        assert (delivery["status"], delivery["last_status_code"], delivery["attempts"]) == ("pending", 302, 1)
        assert len(redirecting.seen) == 1
        assert inside.seen == []
    finally:
        inside.close()
        redirecting.close()


@contextmanager
def jobs_held(hooks: Hooks) -> Iterator[list[tuple[str, str]]]:
    """Within: the attempt jobs dispatch sends are kept, as (delivery id, claim token), not run."""
    sent: list[tuple[str, str]] = []
    attempt_now = hooks.webhooks.send_job
    hooks.webhooks.send_job = lambda _task, delivery_id, token: sent.append((delivery_id, token))
    try:
        yield sent
    finally:
        hooks.webhooks.send_job = attempt_now


def _one_claimed(hooks: Hooks, receiver: Receiver, sent: list[tuple[str, str]]) -> tuple[str, str, str]:
    """An endpoint for `receiver` and an event claimed for it: (endpoint id, delivery id, token)."""
    made = endpoint(hooks.api, receiver.url, ["resource.created"])
    hooks.api.post("/v1/resources", json=RESOURCE)
    hooks.deliver()
    ((delivery_id, token),) = sent
    return made["id"], delivery_id, token


def _delivery_row(hooks: Hooks) -> Any:
    with hooks.container.database.engine.connect() as connection:
        return connection.execute(select(webhook_deliveries)).one()


def test_a_job_sends_only_under_the_claim_it_was_sent_with(hooks: Hooks) -> None:
    """A job the broker delivers twice, or one that outlived its claim, sends nothing out of turn."""
    with closing(Receiver(status=204)) as receiver, jobs_held(hooks) as sent:
        _, delivery_id, late = _one_claimed(hooks, receiver, sent)
        assert hooks.webhooks.attempt(delivery_id, "another-dispatch") is None
        clock = _controlled(hooks)
        clock.now += hooks.webhooks.lease + timedelta(seconds=1)
        assert hooks.webhooks.attempt(delivery_id, late) is None  # it waited past its claim
        assert receiver.seen == []
        assert hooks.webhooks.dispatch() == 1  # the lapsed claim is taken afresh
        token = sent[-1][1]
        assert token != late
        assert hooks.webhooks.attempt(delivery_id, token) is not None
        assert hooks.webhooks.attempt(delivery_id, token) is None  # redelivered after it was recorded
        assert len(receiver.seen) == 1
        row = _delivery_row(hooks)
        assert (row.status, row.attempts, row.claim, row.claimed_until) == ("succeeded", 1, None, None)


def test_an_attempt_whose_claim_was_taken_over_is_logged_and_changes_nothing_else(hooks: Hooks) -> None:
    """A worker slower than its lease: while it sends, another dispatch claims the delivery. Its
    attempt reached the receiver, so it is logged; only the current claim's attempt moves the delivery."""
    send = hooks.webhooks.sender.send

    def send_while_claimed_again(*args: Any, **kwargs: Any) -> domain.Attempt:
        with hooks.container.database.engine.begin() as connection:
            connection.execute(webhook_deliveries.update().values(claim="current"))
        return send(*args, **kwargs)

    with closing(Receiver(status=500)) as receiver, jobs_held(hooks) as sent:
        _, delivery_id, stale = _one_claimed(hooks, receiver, sent)
        hooks.webhooks.sender.send = send_while_claimed_again  # type: ignore[method-assign]
        try:
            assert hooks.webhooks.attempt(delivery_id, stale) is not None
        finally:
            hooks.webhooks.sender.send = send  # type: ignore[method-assign]
        row = _delivery_row(hooks)
        assert (row.status, row.attempts, row.scheduled_attempts, row.claim) == ("pending", 1, 0, "current")
        receiver.status = 204
        assert hooks.webhooks.attempt(delivery_id, "current") is not None
        row = _delivery_row(hooks)
        with hooks.container.database.engine.connect() as connection:
            numbers = list(connection.execute(select(webhook_attempts.c.number).order_by("number")).scalars())
        assert (row.status, row.attempts, row.claim, numbers) == ("succeeded", 2, None, [1, 2])
        assert [seen[3] for seen in receiver.seen] == [500, 204]


def test_a_job_that_finds_its_endpoint_disabled_lets_the_delivery_go_once_it_is_enabled(hooks: Hooks) -> None:
    with closing(Receiver(status=204)) as receiver:
        with jobs_held(hooks) as sent:
            endpoint_id, delivery_id, token = _one_claimed(hooks, receiver, sent)
            path = f"/v1/webhook-endpoints/{endpoint_id}"
            hooks.api.patch(path, json={"active": False}, headers={"If-Match": '"v1"'})
            assert hooks.webhooks.attempt(delivery_id, token) is None
        hooks.api.patch(path, json={"active": True}, headers={"If-Match": '"v2"'})
        hooks.deliver()  # at once: the claim was released, not left to lapse
        assert [seen[3] for seen in receiver.seen] == [204]
