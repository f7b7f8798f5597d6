"""Schemathesis over every operation: generated requests (valid and invalid) never get a 5xx or a
response that breaks the contract. Runs against the real app on a fresh SQLite database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import settings
from schemathesis.config import SchemathesisConfig

from bookwell.app import CONTRACT_V1
from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.db import Database

CASES_PER_OPERATION = 100


@pytest.fixture
def fuzzed_app(sqlite_database: Database) -> Flask:
    settings_ = sqlite_database.settings
    return create_app(settings_, container=bootstrap(settings_, database=sqlite_database))


class _Credential:
    """The token of the current test's organization; schemathesis asks for it per case."""

    token = ""


@pytest.fixture
def token(fuzzed_app: Flask) -> str:
    container = fuzzed_app.extensions["bookwell.container"]
    _, _Credential.token = identity_service.create_organization(
        uow=container.unit_of_work(IdentityUnitOfWork)(), name="Fuzz"
    )
    return _Credential.token


schema = schemathesis.openapi.from_path(
    str(CONTRACT_V1), config=SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
)


@schema.auth(refresh_interval=None)
class BearerToken:
    """Schemathesis applies the credential itself, so its negative cases can leave it out on purpose."""

    def get(self, _case: Any, _context: Any) -> str:
        return _Credential.token

    def set(self, case: Any, data: str, _context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_no_5xx_and_every_response_matches_the_contract(case: Any, fuzzed_app: Flask, token: str) -> None:
    case.operation.schema.app = fuzzed_app  # in-process WSGI calls, auth probes included
    case.call_and_validate(app=fuzzed_app)
