"""A database that cannot be reached is a 503 the client may retry, never a 500: every `/v1`
operation answers problem+json `dependency_unavailable` with `Retry-After`, `/readyz` says 503, and
`/livez` still answers (the process is alive). PostgreSQL is pointed at a port nobody listens on."""

from __future__ import annotations

import re

import pytest
import yaml
from flask import Flask

from bookwell.app import CONTRACT_V1
from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.platform.db import Database
from tests.api.conftest import check_against_contract
from tests.conftest import settings_for
from tests.support.net import free_port

SAMPLE_IDS = {"resource_id": "res_01M8T45FJP2HHYWC8VW075KPF4", "booking_id": "bkg_01M8T45FJP2HHYWC8VW075KPF4"}


@pytest.fixture
def unreachable() -> Flask:
    settings = settings_for(f"postgresql://postgres@127.0.0.1:{free_port()}/bookwell", db_connect_timeout_s=1)
    return create_app(settings, container=bootstrap(settings))


def _operations() -> list[tuple[str, str]]:
    contract = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))
    return [
        (method.upper(), path)
        for path, item in contract["paths"].items()
        if path.startswith("/v1/")
        for method in ("get", "post", "patch", "delete")
        if method in item
    ]


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_v1_operation_is_503_dependency_unavailable(unreachable: Flask, method: str, path: str) -> None:
    concrete = re.sub(r"{([a-z_]+)}", lambda m: SAMPLE_IDS.get(m.group(1), "x_01M8T45FJP2HHYWC8VW075KPF4"), path)
    headers = {"Authorization": "Bearer bw_0123456789abcdef_" + "a" * 43, "Idempotency-Key": "outage-1"}
    answer = unreachable.test_client().open(
        concrete, method=method, headers=headers, json={} if method != "GET" else None
    )
    assert (answer.status_code, answer.mimetype) == (503, "application/problem+json"), answer.get_data(as_text=True)
    assert answer.get_json()["code"] == "dependency_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.headers["X-Request-ID"]
    check_against_contract(answer)  # the contract documents the 503


def test_readiness_says_503_and_liveness_still_answers(unreachable: Flask) -> None:
    client = unreachable.test_client()
    assert client.get("/readyz").status_code == 503
    assert client.get("/livez").status_code == 200


@pytest.mark.postgres
def test_a_pool_with_no_free_connection_is_503_too(postgres_database: Database) -> None:
    settings = postgres_database.settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_s": 0.2}
    )
    app = create_app(settings, container=bootstrap(settings))
    database = app.extensions["bookwell.container"].database
    with database.engine.connect():  # the pool's one connection, held
        answer = app.test_client().get(
            "/v1/resources", headers={"Authorization": "Bearer bw_0123456789abcdef_" + "a" * 43}
        )
    database.dispose()
    assert (answer.status_code, answer.get_json()["code"]) == (503, "dependency_unavailable")
    assert int(answer.headers["Retry-After"]) >= 1
