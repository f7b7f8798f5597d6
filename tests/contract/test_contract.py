"""The contract itself: valid OpenAPI 3.1, served as written, every operation bound to one view, and
every /v1 route documented."""

from __future__ import annotations

import re

import pytest
import yaml
from flask import Flask
from openapi_spec_validator import validate

from bookwell.app import CONTRACT_V1
from bookwell.contract import v1 as models
from bookwell.platform.http.contract.spec import HTTP_METHODS
from bookwell.platform.http.contract.spec import Contract

DOCUMENT = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))


def test_the_contract_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    validate(DOCUMENT)


def test_it_is_served_exactly_as_written(app: Flask) -> None:
    assert app.test_client().get("/openapi/v1.json").get_json() == DOCUMENT


def _documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), re.sub(r"{([a-z_]+)}", r"<\1>", path))
        for path, item in DOCUMENT["paths"].items()
        for method in HTTP_METHODS
        if method in item
    }


def _served(app: Flask) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }


def test_every_operation_is_served_and_every_v1_route_is_documented(app: Flask) -> None:
    served = _served(app)
    assert _documented() <= served
    assert {route for route in served if route[1].startswith("/v1")} == {
        route for route in _documented() if route[1].startswith("/v1")
    }
    undocumented = set(served - _documented())
    assert undocumented == {("GET", "/docs/assets/<path:filename>")}


def test_each_operation_has_exactly_one_view(app: Flask) -> None:
    endpoints = [rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "docs_assets"]
    operation_ids = [
        op["operationId"] for item in DOCUMENT["paths"].values() for op in item.values() if "operationId" in op
    ]
    assert sorted(endpoints) == sorted(operation_ids)
    every_id = [item[m]["operationId"] for item in DOCUMENT["paths"].values() for m in HTTP_METHODS if m in item]
    assert sorted(every_id) == sorted(operation_ids)  # no operationId used twice


def test_every_secured_operation_declares_its_scopes_and_every_v1_operation_is_secured() -> None:
    contract = Contract(DOCUMENT, models)
    for operation in contract.operations.values():
        if operation.path.startswith("/v1"):
            assert operation.scopes is not None, operation.operation_id
        else:
            assert operation.scopes is None, operation.operation_id


def test_every_operation_documents_its_errors() -> None:
    for operation in Contract(DOCUMENT, models).operations.values():
        if not operation.path.startswith("/v1"):
            continue
        responses = set(DOCUMENT["paths"][operation.path][operation.method.lower()]["responses"])
        assert {"401", "500"} <= responses, operation.operation_id
        if operation.scopes:
            assert "403" in responses, operation.operation_id
        if operation.body_model is not None:
            assert {"400", "413", "415", "422"} <= responses, operation.operation_id


def test_a_rate_limit_class_the_limits_do_not_know_is_refused_at_start_up() -> None:
    document = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))
    assert Contract(document, models).operations["getAvailability"].rate_limit_class == "availability"
    document["paths"]["/v1/resources/{resource_id}/availability"]["get"]["x-rate-limit-class"] = "organisation"
    with pytest.raises(ValueError, match="getAvailability: x-rate-limit-class 'organisation' is not one of"):
        Contract(document, models)
