"""Notifications' HTTP views: the contract's operations in, service calls, representations out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Response
from flask import jsonify

from bookwell.notifications import service
from bookwell.notifications.domain import DeliveryStatus
from bookwell.notifications.ports import NotificationsUnitOfWork
from bookwell.notifications.ports import UrlChecker
from bookwell.notifications.presenters import v1
from bookwell.platform.http.conditional import etag
from bookwell.platform.http.conditional import not_modified
from bookwell.platform.http.conditional import required_versions
from bookwell.platform.http.conditional import with_etag
from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import Dependency
from bookwell.platform.http.contract.binding import Views
from bookwell.platform.http.pagination import page_request
from bookwell.platform.http.pagination import page_response
from bookwell.platform.http.pipeline.idempotency import shown_once


class Wiring:
    """What the views need besides the unit of work: settings-made parts, given at registration."""

    def __init__(
        self,
        *,
        policy: UrlChecker,
        secret_key: str,
        grace: timedelta,
        kick: Callable[[], None],
    ) -> None:
        self.policy = policy
        self.secret_key = secret_key
        self.grace = grace
        self.kick = kick


views = Views()
uow = Dependency[NotificationsUnitOfWork]("notifications.uow")
wiring = Dependency[Wiring]("notifications.wiring")


def _with_secret(endpoint: Any, secret: str) -> Response:
    return shown_once(with_etag(jsonify(v1.endpoint(endpoint) | {"secret": secret}), endpoint.version), "secret")


@views.operation("createWebhookEndpoint")
def create_endpoint(call: Call) -> tuple[Response, int, dict[str, str]]:
    given = wiring()
    endpoint, secret = service.create_endpoint(
        uow=uow(),
        policy=given.policy,
        secret_key=given.secret_key,
        organization_id=call.organization_id,
        fields=call.body.model_dump(exclude_unset=True, mode="json"),
    )
    return _with_secret(endpoint, secret), 201, {"Location": f"/v1/webhook-endpoints/{endpoint.id}"}


@views.operation("listWebhookEndpoints")
def list_endpoints(call: Call) -> Response:
    scope = call.operation.operation_id
    page = service.list_endpoints(
        uow=uow(readonly=True),
        organization_id=call.organization_id,
        page=page_request(scope, call.query.limit, call.query.cursor),
    )
    return page_response(scope, page, present=v1.endpoint, key=lambda e: e.id)


@views.operation("getWebhookEndpoint")
def get_endpoint(call: Call) -> Response:
    endpoint = service.get_endpoint(
        uow=uow(readonly=True), organization_id=call.organization_id, endpoint_id=call.path["webhook_endpoint_id"]
    )
    return not_modified(etag(endpoint.version)) or with_etag(jsonify(v1.endpoint(endpoint)), endpoint.version)


@views.operation("updateWebhookEndpoint")
def update_endpoint(call: Call) -> Response:
    endpoint = service.update_endpoint(
        uow=uow(),
        policy=wiring().policy,
        organization_id=call.organization_id,
        endpoint_id=call.path["webhook_endpoint_id"],
        accepted_versions=required_versions(),
        changes=call.body.model_dump(exclude_unset=True, mode="json"),
        kick=wiring().kick,
    )
    return with_etag(jsonify(v1.endpoint(endpoint)), endpoint.version)


@views.operation("deleteWebhookEndpoint")
def delete_endpoint(call: Call) -> tuple[str, int]:
    service.delete_endpoint(
        uow=uow(),
        organization_id=call.organization_id,
        endpoint_id=call.path["webhook_endpoint_id"],
        accepted_versions=required_versions(),
    )
    return "", 204


@views.operation("rotateWebhookEndpointSecret")
def rotate_secret(call: Call) -> Response:
    given = wiring()
    endpoint, secret = service.rotate_secret(
        uow=uow(),
        secret_key=given.secret_key,
        grace=given.grace,
        organization_id=call.organization_id,
        endpoint_id=call.path["webhook_endpoint_id"],
    )
    return _with_secret(endpoint, secret)


@views.operation("testWebhookEndpoint")
def test_endpoint(call: Call) -> tuple[Response, int, dict[str, str]]:
    delivery = service.send_test(
        uow=uow(),
        organization_id=call.organization_id,
        endpoint_id=call.path["webhook_endpoint_id"],
        kick=wiring().kick,
    )
    return jsonify(v1.delivery(delivery)), 202, {"Location": f"/v1/webhook-deliveries/{delivery.id}"}


@views.operation("replayWebhookEndpoint")
def replay(call: Call) -> tuple[Response, int]:
    given = wiring()
    count = service.replay(
        uow=uow(),
        organization_id=call.organization_id,
        endpoint_id=call.path["webhook_endpoint_id"],
        since=call.body.since.root,
        kick=given.kick,
    )
    return jsonify({"deliveries": count}), 202


@views.operation("listWebhookDeliveries")
def list_deliveries(call: Call) -> Response:
    scope = call.operation.operation_id
    status = call.query.status
    page = service.list_deliveries(
        uow=uow(readonly=True),
        organization_id=call.organization_id,
        endpoint_id=call.path["webhook_endpoint_id"],
        status=None if status is None else DeliveryStatus(status.value),
        page=page_request(scope, call.query.limit, call.query.cursor),
    )
    return page_response(scope, page, present=v1.delivery, key=lambda d: d.id)


@views.operation("getWebhookDelivery")
def get_delivery(call: Call) -> Response:
    delivery = service.get_delivery(
        uow=uow(readonly=True), organization_id=call.organization_id, delivery_id=call.path["webhook_delivery_id"]
    )
    return jsonify(v1.delivery_with_attempts(delivery))


@views.operation("retryWebhookDelivery")
def retry_delivery(call: Call) -> tuple[Response, int]:
    delivery = service.retry_delivery(
        uow=uow(),
        organization_id=call.organization_id,
        delivery_id=call.path["webhook_delivery_id"],
        kick=wiring().kick,
    )
    return jsonify(v1.delivery(delivery)), 202
