"""The contract as data: the OpenAPI document loaded, each operation resolved to what the pipeline needs."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel

IDEMPOTENCY_HEADER = "Idempotency-Key"  # the header of draft-ietf-httpapi-idempotency-key-header
RATE_LIMIT_CLASSES = frozenset({"reads", "writes", "availability"})  # the per-credential policies
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
_PATH_PARAM = re.compile(r"{([a-z_][a-z0-9_]*)}")


@dataclass(frozen=True)
class Operation:
    """One operation of the contract, resolved to what the binding needs."""

    operation_id: str
    method: str
    path: str
    scopes: frozenset[str] | None  # None: a public operation
    body_model: type[BaseModel] | None
    body_schema: Mapping[str, Any] | None  # with local `$ref`s resolved where the null check walks
    query_model: type[BaseModel] | None
    path_models: Mapping[str, type[BaseModel]]
    idempotency_key: str | None  # None, "optional" or "required"
    header_limits: Mapping[str, int]  # declared header parameters with a `maxLength`
    rate_limit_class: str  # which per-credential policy counts it: `x-rate-limit-class`, else reads or writes

    @property
    def flask_rule(self) -> str:
        """The path in Flask's syntax: `/v1/resources/<resource_id>`."""
        return _PATH_PARAM.sub(r"<\1>", self.path)


class Contract:
    """A versioned OpenAPI document and the generated models its operations validate with."""

    def __init__(self, document: dict[str, Any], models: ModuleType) -> None:
        self.document = document
        self.json_bytes = json.dumps(document, separators=(",", ":")).encode()
        self.operations = {op.operation_id: op for op in self._resolve(models)}

    @classmethod
    def load(cls, path: Path, models: ModuleType) -> Contract:
        """Read a contract from its YAML file."""
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")), models)

    def _resolve(self, models: ModuleType) -> list[Operation]:
        default_security = self.document.get("security", [])
        operations = []
        for path, item in self.document["paths"].items():
            shared_params = item.get("parameters", [])
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                spec = item[method]
                params = [self._deref(p) for p in [*shared_params, *spec.get("parameters", [])]]
                operations.append(
                    Operation(
                        operation_id=spec["operationId"],
                        method=method.upper(),
                        path=path,
                        scopes=_scopes(spec.get("security", default_security)),
                        body_model=_body_model(spec, models),
                        body_schema=self._body_schema(spec),
                        query_model=_query_model(spec["operationId"], params, models),
                        path_models={
                            p["name"]: _model_named(models, _ref_name(p["schema"]))
                            for p in params
                            if p["in"] == "path" and "$ref" in p["schema"]
                        },
                        idempotency_key=_idempotency_key(params),
                        header_limits={
                            p["name"]: int(p["schema"]["maxLength"])
                            for p in params
                            if p["in"] == "header" and "maxLength" in p.get("schema", {})
                        },
                        rate_limit_class=_rate_limit_class(spec, method),
                    )
                )
        return operations

    def _body_schema(self, spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
        body = spec.get("requestBody")
        return None if body is None else self._resolved(body["content"]["application/json"]["schema"])

    def _resolved(self, node: Any) -> Any:
        """`node` with every local `$ref` inside replaced by its target (the contract has no cycles)."""
        if isinstance(node, dict):
            return {key: self._resolved(value) for key, value in self._deref(node).items()}
        if isinstance(node, list):
            return [self._resolved(item) for item in node]
        return node

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        """The object a local `$ref` points at (or the node itself)."""
        if "$ref" not in node:
            return node
        target: Any = self.document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        return dict(target)


def _rate_limit_class(spec: Mapping[str, Any], method: str) -> str:
    """The per-credential policy that counts the operation: `x-rate-limit-class`, else reads or writes."""
    named = str(spec.get("x-rate-limit-class", "reads" if method == "get" else "writes"))
    if named not in RATE_LIMIT_CLASSES:
        raise ValueError(
            f"{spec['operationId']}: x-rate-limit-class {named!r} is not one of {sorted(RATE_LIMIT_CLASSES)}"
        )
    return named


def _ref_name(schema: Mapping[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def _model_named(models: ModuleType, name: str) -> type[BaseModel]:
    model = getattr(models, name, None)
    if model is None:
        raise LookupError(f"no generated model {name}; run `make contract-models`")
    return model  # type: ignore[no-any-return]


def _scopes(security: list[dict[str, list[str]]]) -> frozenset[str] | None:
    if not security:
        return None
    if len(security) != 1:
        raise ValueError("an operation declares exactly one security requirement")
    (scopes,) = security[0].values()
    return frozenset(scopes)


def _body_model(spec: Mapping[str, Any], models: ModuleType) -> type[BaseModel] | None:
    body = spec.get("requestBody")
    if body is None:
        return None
    return _model_named(models, _ref_name(body["content"]["application/json"]["schema"]))


def _query_model(operation_id: str, params: list[dict[str, Any]], models: ModuleType) -> type[BaseModel] | None:
    if not any(p["in"] == "query" for p in params):
        return None
    return _model_named(models, operation_id[0].upper() + operation_id[1:] + "ParametersQuery")


def _idempotency_key(params: list[dict[str, Any]]) -> str | None:
    for param in params:
        if param["in"] == "header" and param["name"] == IDEMPOTENCY_HEADER:
            return "required" if param.get("required") else "optional"
    return None
