"""Every error is problem+json, Werkzeug's and unexpected ones too; request ids; one log line per request."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.catalog import service as catalog_service
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.db import Database
from tests.api.conftest import RESOURCE
from tests.api.conftest import Api
from tests.api.conftest import Org
from tests.api.conftest import problem
from tests.conftest import settings_for


def test_unknown_route_is_404(api: Api) -> None:
    problem(api.get("/v1/nothing-here", validate=False), 404, "not_found")


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    response = api.request("PUT", "/v1/resources", validate=False)
    problem(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_body_over_64_kib_is_413(api: Api) -> None:
    body = json.dumps(RESOURCE | {"description": "x" * (65 * 1024)})
    problem(api.post("/v1/resources", data=body, content_type="application/json"), 413, "payload_too_large")


def chunked(api: Api, path: str, body: bytes, key: str) -> TestResponse:
    """POST `body` framed as a server hands over a chunked one: no length, the stream ends with it."""
    return api.post(
        path,
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked", "Idempotency-Key": key},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_64_kib_is_413_and_leaves_its_key_unused(api: Api) -> None:
    large = json.dumps({"name": "x" * (65 * 1024), "scopes": ["events:read"]}).encode()
    problem(chunked(api, "/v1/api-keys", large, "chunked-1"), 413, "payload_too_large")
    small = json.dumps({"name": "small", "scopes": ["events:read"]}).encode()
    created = chunked(api, "/v1/api-keys", small, "chunked-1")
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["name"] == "small"
    assert "Idempotent-Replayed" not in created.headers


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(api: Api, content_type: str | None) -> None:
    kwargs = {"content_type": content_type} if content_type else {}
    problem(api.post("/v1/resources", data=json.dumps(RESOURCE), **kwargs), 415, "unsupported_media_type")


@pytest.mark.parametrize("raw", ["{", "", "{'name': 1}", "[1,", "\xff"])
def test_malformed_json_is_400(api: Api, raw: str) -> None:
    problem(api.post("/v1/resources", data=raw, content_type="application/json"), 400, "malformed_json")


@pytest.mark.parametrize("raw", ["[]", "null", "42", '"text"'])
def test_json_that_is_not_an_object_is_422(api: Api, raw: str) -> None:
    problem(api.post("/v1/resources", data=raw, content_type="application/json"), 422, "validation_failed")


def test_unexpected_error_is_500_with_request_id_and_nothing_internal(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(**_: object) -> None:
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    monkeypatch.setattr(catalog_service, "list_resources", explode)
    response = api.get("/v1/resources", headers={"X-Request-ID": "trace-me-500"})
    body = problem(response, 500, "internal_error")
    assert body["request_id"] == "trace-me-500"
    text = response.get_data(as_text=True)
    assert "hunter2" not in text
    assert "Traceback" not in text
    assert "RuntimeError" not in text
    out = capsys.readouterr().out
    assert "locals" not in out
    logged = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    errors = [line for line in logged if line["event"] == "unhandled_exception"]
    assert errors
    assert errors[0]["request_id"] == "trace-me-500"


def test_a_well_formed_request_id_is_echoed_and_a_bad_one_replaced(api: Api) -> None:
    assert api.get("/v1/organization", headers={"X-Request-ID": "abc-123.X_y"}).headers["X-Request-ID"] == "abc-123.X_y"
    for bad in ["has space", "x" * 129, "semi;colon"]:
        replaced = api.get("/v1/organization", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert replaced != bad
        assert len(replaced) == 32
    assert api.get("/livez").headers["X-Request-ID"]


def test_one_structured_log_line_per_request_without_secrets(
    api: Api, org: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    created = api.post("/v1/api-keys", json={"name": "k", "scopes": ["events:read"]}).get_json()
    api.get(f"/v1/resources/{'res_' + '0' * 26}", headers={"X-Request-ID": "req-42"})
    out = capsys.readouterr().out
    assert org.token not in out
    assert created["secret"] not in out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "bookwell.access"]
    assert len(access) == 2
    last = access[-1]
    assert last["request_id"] == "req-42"
    assert last["route"] == "/v1/resources/<resource_id>"
    assert (last["method"], last["status"], last["organization_id"]) == ("GET", 404, org.id)
    assert isinstance(last["duration_ms"], float)


def test_liveness_and_readiness(anonymous: Api) -> None:
    assert anonymous.get("/livez").get_json() == {"status": "ok"}
    assert anonymous.get("/readyz").get_json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_readiness_skips_the_embedded_broker_and_is_503_when_a_broker_server_is_down(
    sqlite_database: Database, tmp_path: Path
) -> None:
    embedded = sqlite_database.settings.model_copy(update={"broker_url": f"filesystem://{tmp_path / 'broker'}"})
    ready = Api(create_app(embedded).test_client()).get("/readyz")
    assert ready.get_json() == {"status": "ok", "checks": {"database": "ok"}}
    for url in ("redis://127.0.0.1:1/0", "amqp://guest:guest@127.0.0.1:1//"):
        down = sqlite_database.settings.model_copy(update={"broker_url": url, "readyz_timeout_s": 1.0})
        response = Api(create_app(down).test_client()).get("/readyz")
        problem(response, 503, "dependency_unavailable")
        assert "broker" in response.get_json()["detail"]


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/none", "sqlite:////proc/no-such-dir/bookwell.db"])
def test_readiness_is_503_when_the_database_is_unreachable(url: str) -> None:
    app = create_app(settings_for(url).model_copy(update={"readyz_timeout_s": 1.0}))
    response = Api(app.test_client()).get("/readyz")
    problem(response, 503, "dependency_unavailable")
    assert "database" in response.get_json()["detail"]


def test_contract_and_docs_are_served_locally(anonymous: Api, app: Flask) -> None:
    contract = anonymous.get("/openapi/v1.json").get_json()
    assert contract["openapi"] == "3.1.0"
    page = anonymous.get("/docs")
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/openapi/v1.json" in html
    assert "https://" not in html  # no CDN
    for asset in ["/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"]:
        assert asset in html
        response = anonymous.get(asset, validate=False)
        assert response.status_code == 200
        assert len(response.get_data()) > 10_000
        response.close()


def test_metrics_count_requests_by_route_template(api: Api, anonymous: Api) -> None:
    def count(text: str, line_start: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(line_start)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    series = 'bookwell_http_requests_total{method="GET",route="/v1/resources/<resource_id>",status="404"}'
    before = count(anonymous.get("/metrics").get_data(as_text=True), series)
    for _ in range(3):
        api.get("/v1/resources/res_00000000000000000000000000")
    response = anonymous.get("/metrics")
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert count(text, series) == before + 3
    assert (
        'bookwell_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/resources/<resource_id>"}'
        in text
    )
    assert "res_0000" not in text  # ids never become labels


def test_a_query_string_that_is_not_utf8_is_400(api: Api) -> None:
    response = api.get("/v1/resources", environ_overrides={"QUERY_STRING": "active=\xff"}, validate=False)
    problem(response, 400, "malformed_request")


@pytest.mark.parametrize("query", ["active=%FF", "active=tr%C3ue", "cursor=%E2%82"])
def test_percent_encoded_bytes_that_are_not_utf8_are_400_not_replaced(api: Api, query: str) -> None:
    problem(api.get(f"/v1/resources?{query}"), 400, "malformed_request")


def test_an_if_none_match_over_its_256_character_limit_is_400(api: Api) -> None:
    created = api.post("/v1/resources", json=RESOURCE).get_json()
    path = f"/v1/resources/{created['id']}"
    assert api.get(path, headers={"If-None-Match": '"v1"'}).status_code == 304
    body = problem(api.get(path, headers={"If-None-Match": '"' + "v" * 300 + '"'}), 400, "invalid_header")
    assert body["errors"][0]["pointer"] == "/header/If-None-Match"


@pytest.mark.parametrize("capacity", ["1.0", "1e2", "2.00", "3E0"])
def test_an_integer_written_with_a_fraction_or_exponent_is_an_integer(api: Api, capacity: str) -> None:
    raw = json.dumps(RESOURCE)[:-1] + f', "capacity": {capacity}}}'
    created = api.post("/v1/resources", data=raw, content_type="application/json")
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["capacity"] == int(float(capacity))
    fractional = json.dumps(RESOURCE)[:-1] + ', "capacity": 1.5}'
    problem(api.post("/v1/resources", data=fractional, content_type="application/json"), 422, "validation_failed")


@pytest.mark.parametrize(
    ("path", "body", "pointer"),
    [
        ("/v1/resources", RESOURCE | {"name": "Court\u0000"}, "/name"),
        ("/v1/resources", RESOURCE | {"description": "a\u0000b"}, "/description"),
    ],
)
def test_text_with_nul_is_422_with_a_pointer(api: Api, path: str, body: dict[str, object], pointer: str) -> None:
    response = api.post(path, json=body)
    assert [e["pointer"] for e in problem(response, 422, "validation_failed")["errors"]] == [pointer]
    assert api.get("/v1/resources").get_json()["data"] == []


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (RESOURCE | {"capacity": None}, "/capacity"),  # optional, not nullable: null is not "absent"
        (RESOURCE | {"cancellation": {"refund_until_hours_before": None}}, "/cancellation/refund_until_hours_before"),
    ],
)
def test_null_where_the_contract_does_not_allow_it_is_422(api: Api, body: dict[str, object], pointer: str) -> None:
    response = api.post("/v1/resources", json=body)
    assert [e["pointer"] for e in problem(response, 422, "validation_failed")["errors"]] == [pointer]
    assert api.get("/v1/resources").get_json()["data"] == []


def test_null_where_the_contract_allows_it_is_accepted(api: Api) -> None:
    created = api.post("/v1/resources", json=RESOURCE | {"description": "Clay"}).get_json()
    cleared = api.patch(f"/v1/resources/{created['id']}", json={"description": None}, headers={"If-Match": '"v1"'})
    assert (cleared.status_code, cleared.get_json()["description"]) == (200, None)


def test_a_query_value_with_nul_is_422(api: Api) -> None:
    body = problem(api.get("/v1/bookings", query_string={"customer_email": "a\u0000@b.co"}), 422, "validation_failed")
    assert body["errors"][0]["pointer"] == "/query/customer_email"


@pytest.mark.parametrize(("hops", "counted_apart"), [(0, False), (1, True)])
def test_failed_authentication_is_counted_per_forwarded_address_only_behind_declared_proxies(
    sqlite_database: Database, hops: int, counted_apart: bool
) -> None:
    settings = sqlite_database.settings.model_copy(update={"rate_limit_auth_failures": "2/600", "proxy_hops": hops})
    client = create_app(settings, container=bootstrap(settings, database=sqlite_database)).test_client()

    def guess(address: str) -> int:
        headers = {"Authorization": "Bearer bw_wrong", "X-Forwarded-For": address}
        return client.get("/v1/resources", headers=headers).status_code

    assert [guess("198.51.100.1"), guess("198.51.100.1"), guess("198.51.100.1")] == [401, 401, 429]
    # Another client behind the same proxy: its own bucket only when the proxy is declared.
    assert guess("198.51.100.2") == (401 if counted_apart else 429)


def test_a_key_asking_for_what_it_may_not_is_counted_and_told_where_it_stands(
    sqlite_database: Database,
) -> None:
    settings = sqlite_database.settings.model_copy(update={"rate_limit_reads": "3/600"})
    app = create_app(settings, container=bootstrap(settings, database=sqlite_database))
    container = app.extensions["bookwell.container"]
    _, token = identity_service.create_organization(uow=container.unit_of_work(IdentityUnitOfWork)(), name="Scoped")
    found = identity_service.authenticate(uow=container.unit_of_work(IdentityUnitOfWork)(readonly=True), token=token)
    assert found is not None
    _, reader = identity_service.create_api_key(
        uow=container.unit_of_work(IdentityUnitOfWork)(),
        granted_by=found.principal,
        name="resources only",
        scopes=frozenset({"resources:read"}),
    )
    client = app.test_client()
    answers = [client.get("/v1/bookings", headers={"Authorization": f"Bearer {reader}"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [403, 403, 403, 429]
    assert all("RateLimit" in a.headers and "RateLimit-Policy" in a.headers for a in answers)
    assert answers[-1].get_json()["code"] == "rate_limited"


def test_the_reference_with_a_trailing_slash_redirects_to_it(api: Api) -> None:
    answer = api.get("/docs/")
    assert (answer.status_code, answer.headers["Location"]) == (308, "/docs")
