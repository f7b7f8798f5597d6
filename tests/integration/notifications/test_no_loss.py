"""No delivery lost: three partners (one healthy, one failing each delivery's first three attempts,
one answering 500 for a while, then recovering), 500 events, and the worker killed with SIGKILL 20
times while it delivers. Afterwards every partner has accepted every event (deduplicated by
webhook-id: each at least once, so exactly once for a receiver that deduplicates) and nothing is
left pending or dead.

Real processes (relay, worker, scheduler) on PostgreSQL and RabbitMQ, real HTTP on 127.0.0.1. The
retry schedule is compressed (`BOOKWELL_WEBHOOK_RETRY_SCHEDULE_S`: minutes, not days) so that a
two-minute outage is met by several attempts and outlasted, and the test stays bounded; the waits
follow the work left (`wait_for_drain`).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from bookwell.catalog import service as catalog_service
from bookwell.catalog.adapters.sql import SqlCatalogUnitOfWork
from bookwell.notifications import service as notifications_service
from bookwell.notifications.adapters.http import LOOPBACK
from bookwell.notifications.adapters.http import UrlPolicy
from bookwell.notifications.adapters.sql import SqlNotificationsUnitOfWork
from bookwell.notifications.adapters.sql import webhook_deliveries
from bookwell.platform.db import Database
from tests.conftest import RABBITMQ_URL
from tests.support.backbone import Backbone
from tests.support.backbone import create_instruments
from tests.support.backbone import events
from tests.support.booking import setup
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.postgres
EVENTS = 500
KILLS = 20
OUTAGE_S = 120.0  # the two minutes
# About three minutes in all, outlasting the outage by a minute; steps of 20 s at most, so the
# deliveries it held go soon after it ends.
SCHEDULE = "0.5,1,2,4,8,15,20,20,20,20,20,20,20,20,20"


@pytest.fixture
def backbone(postgres_database: Database, tmp_path: Path) -> Iterator[Backbone]:
    create_instruments(postgres_database)  # the processes load the test handlers, which record into it
    running = Backbone(
        postgres_database,
        RABBITMQ_URL,
        tmp_path,
        extra_env={
            "BOOKWELL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "BOOKWELL_WEBHOOK_RETRY_SCHEDULE_S": SCHEDULE,
            "BOOKWELL_WEBHOOK_DISPATCH_EVERY_S": "0.5",
            "BOOKWELL_WEBHOOK_TIMEOUT_S": "2",
        },
    )
    try:
        yield running
    finally:
        running.cleanup()


def _endpoint(database: Database, organization_id: str, url: str) -> str:
    """A new endpoint taking every event; its secret."""
    _, secret = notifications_service.create_endpoint(
        uow=SqlNotificationsUnitOfWork(database),
        policy=UrlPolicy(LOOPBACK, http_allowed=False),
        secret_key=database.settings.secret_key,
        organization_id=organization_id,
        fields={"url": url, "event_types": ["*"]},
    )
    return secret


def _unfinished(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).where(webhook_deliveries.c.status != "succeeded")).scalar_one()
        )


def test_kill_9_of_the_worker_loses_no_delivery_to_any_partner(backbone: Backbone) -> None:
    database = backbone.database
    organization_id, court = setup(database)
    healthy, flaky, outage = Receiver(), Receiver(fails_first=3), Receiver(failing_for=OUTAGE_S)
    receivers = (healthy, flaky, outage)
    for receiver in receivers:
        receiver.secrets = [_endpoint(database, organization_id, receiver.url)]

    stop = threading.Event()

    def write() -> None:  # resource.updated events at a steady rate, EVENTS - 1 of them after the created
        for n in range(EVENTS - 1):
            if stop.is_set():
                return
            catalog_service.update_resource(
                uow=SqlCatalogUnitOfWork(database),
                organization_id=organization_id,
                resource_id=court,
                accepted_versions=None,
                changes={"description": f"update {n}"},
            )
            time.sleep(0.01)

    writer = threading.Thread(target=write, daemon=True)
    backbone.start_all()
    writer.start()
    rng = random.Random()
    try:
        _kill_and_check(backbone, rng=rng, receivers=receivers, flaky=flaky, outage=outage, writer=writer, stop=stop)
    finally:
        for receiver in receivers:
            receiver.close()


def _kill_and_check(
    backbone: Backbone,
    *,
    rng: random.Random,
    receivers: tuple[Receiver, ...],
    flaky: Receiver,
    outage: Receiver,
    writer: threading.Thread,
    stop: threading.Event,
) -> None:
    database = backbone.database
    try:
        for _ in range(KILLS):
            backbone.wait_ready("worker")
            time.sleep(rng.uniform(0.3, 1.5))
            backbone.kill("worker", signal.SIGKILL)
            backbone.start("worker")
    except BaseException:
        stop.set()  # the kills failed: the writer stops too
        raise
    finally:
        writer.join(timeout=120)
    written = [e.id for e in events(database)]
    assert len(written) == EVENTS

    def left() -> int:
        return (
            backbone.unsettled() + _unfinished(database) + sum(len(set(written) - set(r.accepted())) for r in receivers)
        )

    # The outage partner gets nothing for its length, and then at its schedule's next steps.
    backbone.wait_for_drain(left, "every partner to have every event", quiet_s=OUTAGE_S + 2 * 60)
    for receiver in receivers:
        assert set(receiver.accepted()) == set(written)  # deduplicated by webhook-id: each event, none other
    assert len(flaky.seen) >= 4 * EVENTS  # it refused every delivery's first three attempts
    refused = [seen[2] for seen in outage.seen if seen[3] == 500]
    assert max(refused) - min(refused) >= OUTAGE_S / 2  # attempts went on through the outage, and outlasted it
    with database.engine.connect() as connection:
        statuses = dict(
            connection.execute(
                select(webhook_deliveries.c.status, func.count()).group_by(webhook_deliveries.c.status)
            ).all()
        )
    assert statuses == {"succeeded": 3 * EVENTS}
    assert backbone.starts["worker"] == KILLS + 1
    assert backbone.stop_all() == {"scheduler": 0, "relay": 0, "worker": 0}, backbone.output()
