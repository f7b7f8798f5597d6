"""The HTTP surface through create_app(test settings); every response is checked against the contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_core import Config
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_core.datatypes import RequestParameters
from werkzeug.test import TestResponse

from bookwell.app import CONTRACT_V1
from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.messaging.relay import Relay
from tests.conftest import settings_for

CONTRACT = OpenAPI.from_file_path(
    str(CONTRACT_V1), config=Config(extra_media_type_deserializers={"application/problem+json": json.loads})
)


@dataclass
class _SentRequest:
    """What openapi-core needs to find a response's operation (the body was consumed by the app)."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content_type: str = "application/json"
    body: bytes | None = None


def check_against_contract(response: TestResponse) -> None:
    """Fail unless the response is one the contract allows for its request."""
    sent = response.request
    request = _SentRequest(
        host_url=sent.host_url.rstrip("/"),
        path=sent.path,
        method=sent.method.lower(),
        parameters=RequestParameters(query=sent.args, header=sent.headers, cookie=sent.cookies),
    )
    CONTRACT.validate_response(request, WerkzeugOpenAPIResponse(response))


class Api:
    """A test client that validates each response against the contract (unless told the route is off-contract)."""

    def __init__(self, client: FlaskClient, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def as_(self, token: str | None) -> Api:
        """The same client, calling with another credential."""
        return Api(self.client, token)

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, validate: bool = True, **kwargs: Any
    ) -> TestResponse:
        merged = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        merged |= headers or {}
        response = self.client.open(path, method=method, headers=merged, **kwargs)
        if validate:
            check_against_contract(response)
        return response

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)


@dataclass(frozen=True)
class Org:
    id: str
    token: str


@pytest.fixture
def app(sqlite_database: Database) -> Flask:
    settings = sqlite_database.settings
    return create_app(settings, container=bootstrap(settings, database=sqlite_database))


def _drain(relay: Relay) -> Callable[[], int]:
    def drain() -> int:
        total = 0
        while delivered := relay.relay_once():
            total += delivered
        return total

    return drain


@pytest.fixture
def relay(app: Flask) -> Callable[[], int]:
    """Run the relay until the outbox is empty (the event log shows delivered events); how many it delivered."""
    container = app.extensions["bookwell.container"]
    return _drain(Relay(container.database, container.subscriptions, container.jobs.enqueue))


@pytest.fixture
def relay_and_handle(app: Flask) -> Callable[[], int]:
    """`relay`, with each event's handlers run at once, as a worker would run their jobs."""
    container = app.extensions["bookwell.container"]
    jobs = container.jobs
    return _drain(Relay(container.database, container.subscriptions, lambda d, _c: jobs.deliver(d.event_id, d.handler)))


@pytest.fixture
def make_org(app: Flask) -> Any:
    """Create an organization from the command side; returns its id and a token with every scope."""
    container = app.extensions["bookwell.container"]

    def make(name: str = "Acme") -> Org:
        organization, token = identity_service.create_organization(
            uow=container.unit_of_work(IdentityUnitOfWork)(), name=name
        )
        return Org(organization.id, token)

    return make


@pytest.fixture
def org(make_org: Any) -> Org:
    org: Org = make_org()
    return org


@pytest.fixture
def api(app: Flask, org: Org) -> Api:
    """A client authenticated as `org`'s first key (every scope)."""
    return Api(app.test_client(), org.token)


@pytest.fixture
def anonymous(app: Flask) -> Api:
    return Api(app.test_client())


RESOURCE = {
    "name": "Court 1",
    "timezone": "Europe/Berlin",
    "slot_minutes": 30,
    "opening_hours": {"monday": [["08:00", "12:00"], ["13:00", "22:00"]], "saturday": [["10:00", "24:00"]]},
    "price_per_slot": {"amount": 1250, "currency": "EUR"},
}


def problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json response and return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "https://bookwell.dev/problems/" + code.replace("_", "-")
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


__all__ = ["RESOURCE", "Api", "Org", "problem", "settings_for"]
