"""Webhook endpoints and deliveries over HTTP: the secret shown once, conditional changes, rotation,
URL refusals, tests, retries, replays, and tenancy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from bookwell.notifications import domain
from bookwell.notifications.adapters.sql import webhook_deliveries
from bookwell.notifications.adapters.sql import webhook_endpoints
from tests.api.conftest import RESOURCE
from tests.api.conftest import Api
from tests.api.conftest import Org
from tests.api.conftest import problem

ENDPOINT = {"url": "https://partner.example/bookwell/hooks", "event_types": ["resource.*"], "description": "CRM"}


def create(api: Api, **overrides: Any) -> dict[str, Any]:
    response = api.post("/v1/webhook-endpoints", json=ENDPOINT | overrides)
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_create_shows_the_secret_once_and_stores_no_copy_of_it(app: Flask, api: Api) -> None:
    response = api.post("/v1/webhook-endpoints", json=ENDPOINT, headers={"Idempotency-Key": "hook-1"})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/v1/webhook-endpoints/{body['id']}"
    assert response.headers["ETag"] == '"v1"'
    assert body["secret"].startswith("whsec_")
    assert (body["active"], body["disabled_reason"], body["event_types"]) == (True, None, ["resource.*"])
    replay = api.post("/v1/webhook-endpoints", json=ENDPOINT, headers={"Idempotency-Key": "hook-1"})
    assert (replay.headers["Idempotent-Replayed"], replay.get_json()["secret"]) == ("true", None)
    assert replay.get_json()["id"] == body["id"]
    got = api.get(f"/v1/webhook-endpoints/{body['id']}").get_json()
    assert "secret" not in got
    assert "secret" not in api.get("/v1/webhook-endpoints").get_json()["data"][0]
    database = app.extensions["bookwell.container"].database
    with database.engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(select(webhook_endpoints))]
    secret_part = body["secret"].removeprefix("whsec_")
    assert all(secret_part not in str(value) for row in rows for value in row.values())


def test_patch_needs_the_current_version_and_delete_removes_it(api: Api) -> None:
    created = create(api)
    path = f"/v1/webhook-endpoints/{created['id']}"
    problem(api.patch(path, json={"active": False}), 428, "precondition_required")
    changed = api.patch(path, json={"active": False, "event_types": ["*"]}, headers={"If-Match": '"v1"'})
    assert changed.status_code == 200
    assert (changed.get_json()["active"], changed.get_json()["event_types"], changed.headers["ETag"]) == (
        False,
        ["*"],
        '"v2"',
    )
    problem(api.patch(path, json={"active": True}, headers={"If-Match": '"v1"'}), 412, "precondition_failed")
    problem(api.patch(path, json={}, headers={"If-Match": '"v2"'}), 422, "validation_failed")
    problem(api.post(path + "/test"), 409, "webhook_endpoint_inactive")
    assert api.get(path, headers={"If-None-Match": '"v2"'}).status_code == 304
    problem(api.delete(path, headers={"If-Match": '"v1"'}), 412, "precondition_failed")
    assert api.delete(path, headers={"If-Match": '"v2"'}).status_code == 204
    problem(api.get(path), 404, "webhook_endpoint_not_found")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://[::1]/hooks",
        "https://10.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/hooks",
        "https://localhost/hooks",
        "http://partner.example/hooks",
        "https://user:secret@partner.example/hooks",
    ],
)
def test_urls_that_could_reach_inside_are_refused_with_a_clear_code(api: Api, url: str) -> None:
    body = problem(api.post("/v1/webhook-endpoints", json=ENDPOINT | {"url": url}), 422, "webhook_url_forbidden")
    assert body["detail"]
    assert api.get("/v1/webhook-endpoints").get_json()["data"] == []
    created = create(api)
    path = f"/v1/webhook-endpoints/{created['id']}"
    problem(api.patch(path, json={"url": url}, headers={"If-Match": '"v1"'}), 422, "webhook_url_forbidden")
    assert api.get(path).get_json()["url"] == created["url"]


def test_unknown_event_types_and_empty_lists_are_refused(api: Api) -> None:
    for event_types in (["booking.reticulated"], [], ["booking"], ["*", "*"]):
        response = api.post("/v1/webhook-endpoints", json=ENDPOINT | {"event_types": event_types})
        assert response.status_code in {400, 422}, event_types
    assert api.get("/v1/webhook-endpoints").get_json()["data"] == []


def test_rotation_gives_a_new_secret_and_signs_with_both_during_the_grace_period(app: Flask, api: Api) -> None:
    created = create(api)
    rotated = api.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    new_secret = rotated.get_json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != created["secret"]
    assert rotated.headers["ETag"] == '"v2"'
    delivery = api.post(f"/v1/webhook-endpoints/{created['id']}/test")
    assert delivery.status_code == 202
    sent = delivery.get_json()
    assert (sent["event_type"], sent["status"], sent["attempts"]) == ("webhook.test", "pending", 0)
    assert delivery.headers["Location"] == f"/v1/webhook-deliveries/{sent['id']}"
    container = app.extensions["bookwell.container"]
    with container.database.engine.connect() as connection:
        row = connection.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == created["id"])).one()
        body = connection.execute(
            select(webhook_deliveries.c.body).where(webhook_deliveries.c.id == sent["id"])
        ).scalar_one()
    key = container.settings.secret_key
    salts = [row.secret_salt, row.previous_secret_salt]
    headers = domain.headers([domain.derive_secret(key, s) for s in salts], sent["event_id"], 1_900_000_000, body)
    assert [domain.derive_secret(key, s) for s in salts] == [new_secret, created["secret"]]
    for secret in (created["secret"], new_secret):
        assert domain.verify(secret, headers, body, 1_900_000_000) == sent["event_id"]
        Webhook(secret)  # the reference library takes the secret as it was shown


def test_events_become_deliveries_listed_filtered_retried_and_replayed(
    app: Flask, api: Api, relay_and_handle: Callable[[], int]
) -> None:
    endpoint = create(api)
    other = create(api, event_types=["booking.*"])
    resource = api.post("/v1/resources", json=RESOURCE).get_json()
    api.patch(f"/v1/resources/{resource['id']}", json={"capacity": 2}, headers={"If-Match": '"v1"'})
    relay_and_handle()
    listed = api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").get_json()
    assert [d["event_type"] for d in listed["data"]] == ["resource.updated", "resource.created"]
    assert api.get(f"/v1/webhook-endpoints/{other['id']}/deliveries").get_json()["data"] == []
    assert api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries?status=dead").get_json()["data"] == []
    one = listed["data"][0]
    full = api.get(f"/v1/webhook-deliveries/{one['id']}").get_json()
    # No worker runs here, so nothing was attempted: the delivery waits, due since it was made.
    assert (full["status"], full["attempts"], full["attempt_log"]) == ("pending", 0, [])
    database = app.extensions["bookwell.container"].database
    with database.engine.begin() as connection:  # as if its schedule had run out
        connection.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id == one["id"])
            .values(status="dead", next_attempt_at=None, scheduled_attempts=9)
        )
    assert (
        api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries?status=dead").get_json()["data"][0]["id"]
        == one["id"]
    )
    retried = api.post(f"/v1/webhook-deliveries/{one['id']}/retry")
    assert retried.status_code == 202
    assert (retried.get_json()["status"], retried.get_json()["next_attempt_at"] is not None) == ("pending", True)
    assert api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries?status=dead").get_json()["data"] == []
    replayed = api.post(f"/v1/webhook-endpoints/{endpoint['id']}/replay", json={"since": "2020-01-01T00:00:00Z"})
    assert (replayed.status_code, replayed.get_json()) == (202, {"deliveries": 2})
    # A replay re-sends the same deliveries (same webhook-id), it does not add copies.
    assert len(api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").get_json()["data"]) == 2
    late = create(api, event_types=["*"])
    assert api.post(
        f"/v1/webhook-endpoints/{late['id']}/replay", json={"since": "2020-01-01T00:00:00Z"}
    ).get_json() == {"deliveries": 2}
    # Times at the ends of what RFC 3339 writes are within or after the log, never an error.
    for since, count in (("0001-01-01T00:00:00+01:00", 2), ("9999-12-31T23:59:59-01:00", 0)):
        replayed = api.post(f"/v1/webhook-endpoints/{late['id']}/replay", json={"since": since})
        assert (replayed.status_code, replayed.get_json()) == (202, {"deliveries": count}), since


def test_another_organizations_endpoints_and_deliveries_answer_404(api: Api, make_org: Any) -> None:
    mine = create(api)
    sent = api.post(f"/v1/webhook-endpoints/{mine['id']}/test").get_json()
    stranger: Org = make_org("Other")
    theirs = api.as_(stranger.token)
    path = f"/v1/webhook-endpoints/{mine['id']}"
    problem(theirs.get(path), 404, "webhook_endpoint_not_found")
    problem(theirs.patch(path, json={"active": False}, headers={"If-Match": '"v1"'}), 404, "webhook_endpoint_not_found")
    problem(theirs.delete(path, headers={"If-Match": '"v1"'}), 404, "webhook_endpoint_not_found")
    for suffix in ("/rotate-secret", "/test"):
        problem(theirs.post(path + suffix), 404, "webhook_endpoint_not_found")
    problem(theirs.post(path + "/replay", json={"since": "2020-01-01T00:00:00Z"}), 404, "webhook_endpoint_not_found")
    problem(theirs.get(path + "/deliveries"), 404, "webhook_endpoint_not_found")
    problem(theirs.get(f"/v1/webhook-deliveries/{sent['id']}"), 404, "webhook_delivery_not_found")
    problem(theirs.post(f"/v1/webhook-deliveries/{sent['id']}/retry"), 404, "webhook_delivery_not_found")
    assert theirs.get("/v1/webhook-endpoints").get_json()["data"] == []
    assert api.get(path).get_json()["active"] is True


def test_managing_webhooks_needs_its_scope(api: Api) -> None:
    created = api.post("/v1/api-keys", json={"name": "reader", "scopes": ["resources:read"]}).get_json()
    problem(api.as_(created["secret"]).get("/v1/webhook-endpoints"), 403, "insufficient_scope")
