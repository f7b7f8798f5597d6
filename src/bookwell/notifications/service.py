"""Notifications use cases: one function per command or query, each owning its transaction
(`fan_out` joins the inbox's, so a delivery exists exactly when its event was consumed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Any

from bookwell.notifications.domain import TEST_EVENT
from bookwell.notifications.domain import Delivery
from bookwell.notifications.domain import DeliveryNotFound
from bookwell.notifications.domain import DeliveryStatus
from bookwell.notifications.domain import Endpoint
from bookwell.notifications.domain import EndpointInactive
from bookwell.notifications.domain import EndpointNotFound
from bookwell.notifications.domain import EventToSend
from bookwell.notifications.domain import ReplayTooLarge
from bookwell.notifications.domain import StaleEndpoint
from bookwell.notifications.domain import create_endpoint as new_endpoint
from bookwell.notifications.domain import derive_secret
from bookwell.notifications.domain import expand
from bookwell.notifications.domain import new_delivery
from bookwell.notifications.events import test_event
from bookwell.notifications.ports import NotificationsUnitOfWork
from bookwell.notifications.ports import UrlChecker
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.errors import Busy
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest

REPLAY_LIMIT = 10_000  # events one replay may queue; a longer outage is replayed from a later `since` on


def body_of(event: Mapping[str, Any]) -> str:
    """An event as `GET /v1/events` shows it, serialised once: what is signed and sent."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def create_endpoint(
    *,
    uow: NotificationsUnitOfWork,
    policy: UrlChecker,
    secret_key: str,
    organization_id: str,
    fields: Mapping[str, Any],
) -> tuple[Endpoint, str]:
    """Register an endpoint; its secret is returned here, once, and stored nowhere."""
    url = str(fields["url"])
    policy.check(url, unresolved_ok=True)
    endpoint = new_endpoint(
        organization_id=organization_id,
        url=url,
        event_types=fields["event_types"],
        description=fields.get("description"),
        active=fields.get("active", True),
        now=utcnow(),
    )
    with uow:
        uow.endpoints.add(endpoint)
        uow.commit()
    return endpoint, derive_secret(secret_key, endpoint.secret_salt)


def get_endpoint(*, uow: NotificationsUnitOfWork, organization_id: str, endpoint_id: str) -> Endpoint:
    with uow:
        return _endpoint(uow, organization_id, endpoint_id)


def list_endpoints(*, uow: NotificationsUnitOfWork, organization_id: str, page: PageRequest) -> Page[Endpoint]:
    with uow:
        return uow.endpoints.list(organization_id, page)


def update_endpoint(
    *,
    uow: NotificationsUnitOfWork,
    policy: UrlChecker,
    organization_id: str,
    endpoint_id: str,
    accepted_versions: frozenset[int] | None,
    changes: Mapping[str, Any],
    kick: Callable[[], None],
) -> Endpoint:
    """Change an endpoint if the caller holds its current version; an active one's waiting deliveries go now."""
    changes = dict(changes)
    if "url" in changes:
        changes["url"] = str(changes["url"])
        policy.check(changes["url"], unresolved_ok=True)
    with uow:
        endpoint = _current(uow, organization_id, endpoint_id, accepted_versions)
        previous = endpoint.version
        endpoint.update(changes, utcnow())
        _save(uow, endpoint, previous)
        if endpoint.active:
            uow.after_commit(kick)  # re-enabled: what waited goes at once, not at the next sweep
        uow.commit()
    return endpoint


def delete_endpoint(
    *, uow: NotificationsUnitOfWork, organization_id: str, endpoint_id: str, accepted_versions: frozenset[int] | None
) -> None:
    with uow:
        endpoint = _current(uow, organization_id, endpoint_id, accepted_versions)
        uow.endpoints.delete(endpoint)
        uow.commit()


def rotate_secret(
    *,
    uow: NotificationsUnitOfWork,
    secret_key: str,
    grace: timedelta,
    organization_id: str,
    endpoint_id: str,
) -> tuple[Endpoint, str]:
    """A new secret for the endpoint; the one it replaces signs beside it for `grace`."""
    with uow:
        endpoint = _current(uow, organization_id, endpoint_id, None)
        previous = endpoint.version
        endpoint.rotate_secret(utcnow(), grace)
        if not uow.endpoints.save(endpoint, previous_version=previous):  # no If-Match here: a race is a 409
            raise Busy("The webhook endpoint changed while its secret was being rotated; rotate again.")
        uow.commit()
    return endpoint, derive_secret(secret_key, endpoint.secret_salt)


def send_test(
    *, uow: NotificationsUnitOfWork, organization_id: str, endpoint_id: str, kick: Callable[[], None]
) -> Delivery:
    """Queue a `webhook.test` event to this endpoint alone."""
    now = utcnow()
    with uow:
        endpoint = _endpoint(uow, organization_id, endpoint_id)
        if not endpoint.active:
            raise EndpointInactive("The endpoint is disabled; enable it (PATCH active: true) to send it a test event.")
        event_id = new_id("evt")
        event = test_event(endpoint, event_id, now)
        delivery = new_delivery(
            endpoint=endpoint, event_id=event_id, event_type=TEST_EVENT, body=body_of(event), now=now
        )
        uow.deliveries.add([delivery])
        uow.after_commit(kick)
        uow.commit()
    return delivery


def list_deliveries(
    *,
    uow: NotificationsUnitOfWork,
    organization_id: str,
    endpoint_id: str,
    status: DeliveryStatus | None,
    page: PageRequest,
) -> Page[Delivery]:
    with uow:
        _endpoint(uow, organization_id, endpoint_id)
        return uow.deliveries.list(organization_id, endpoint_id, status, page)


def get_delivery(*, uow: NotificationsUnitOfWork, organization_id: str, delivery_id: str) -> Delivery:
    with uow:
        delivery = uow.deliveries.get(organization_id, delivery_id, with_attempts=True)
    if delivery is None:
        raise DeliveryNotFound("No such webhook delivery.")
    return delivery


def retry_delivery(
    *, uow: NotificationsUnitOfWork, organization_id: str, delivery_id: str, kick: Callable[[], None]
) -> Delivery:
    """Make a delivery due now on a fresh schedule, whatever its status."""
    with uow:
        delivery = uow.deliveries.get(organization_id, delivery_id)
        if delivery is None:
            raise DeliveryNotFound("No such webhook delivery.")
        again = delivery.again(utcnow())
        uow.deliveries.restart([again.id], again.updated_at)
        uow.after_commit(kick)
        uow.commit()
    return again


def replay(
    *,
    uow: NotificationsUnitOfWork,
    organization_id: str,
    endpoint_id: str,
    since: datetime,
    kick: Callable[[], None],
) -> int:
    """Deliver again, now, every event still in the log since `since` that the endpoint takes; how many."""
    now = utcnow()
    with uow:
        endpoint = _endpoint(uow, organization_id, endpoint_id)
        events = uow.logged_events.since(organization_id, since, sorted(expand(endpoint.event_types)), REPLAY_LIMIT + 1)
        if len(events) > REPLAY_LIMIT:
            raise ReplayTooLarge(f"More than {REPLAY_LIMIT} events match; replay from a later `since` first.")
        known = uow.deliveries.of_events(endpoint.id, [event.id for event in events])
        uow.deliveries.restart([known[event.id].id for event in events if event.id in known], now)
        uow.deliveries.add([_delivery_of(endpoint, event, now) for event in events if event.id not in known])
        uow.after_commit(kick)
        uow.commit()
    return len(events)


def fan_out(*, uow: NotificationsUnitOfWork, event: EventToSend, kick: Callable[[], None]) -> int:
    """A delivery to every active endpoint of the event's organization that takes its type, in the
    consuming inbox row's transaction; how many were made."""
    now = utcnow()
    with uow:
        takers = [e for e in uow.endpoints.active(event.organization_id) if e.takes(event.type)]
        made = uow.deliveries.add([_delivery_of(endpoint, event, now) for endpoint in takers])
        if made:
            uow.after_commit(kick)
        uow.commit()
    return len(made)


def _delivery_of(endpoint: Endpoint, event: EventToSend, now: datetime) -> Delivery:
    return new_delivery(endpoint=endpoint, event_id=event.id, event_type=event.type, body=body_of(event.shown), now=now)


def _endpoint(uow: NotificationsUnitOfWork, organization_id: str, endpoint_id: str) -> Endpoint:
    endpoint = uow.endpoints.get(organization_id, endpoint_id)
    if endpoint is None:
        raise EndpointNotFound("No such webhook endpoint.")
    return endpoint


def _current(
    uow: NotificationsUnitOfWork, organization_id: str, endpoint_id: str, accepted_versions: frozenset[int] | None
) -> Endpoint:
    endpoint = _endpoint(uow, organization_id, endpoint_id)
    endpoint.check_version(accepted_versions)
    return endpoint


def _save(uow: NotificationsUnitOfWork, endpoint: Endpoint, previous_version: int) -> None:
    if not uow.endpoints.save(endpoint, previous_version=previous_version):
        raise StaleEndpoint("The webhook endpoint changed while this request was being handled.")
