"""The contract at runtime: each OpenAPI operation bound to exactly one view, validated by generated models.

A request meets, in order: authentication and the operation's scopes, the media type,
the body (strict JSON against the generated model), the query (lax, since query values
are strings), and the path parameters (a malformed id is one that never existed: 404).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from typing import Generic
from typing import TypeVar
from urllib.parse import unquote_to_bytes

import yaml
from flask import Flask
from flask import Response
from flask import current_app
from flask import request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel
from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from bookwell.platform.http.auth import Authenticator
from bookwell.platform.http.auth import authenticate
from bookwell.platform.http.idempotency import HEADER as IDEMPOTENCY_HEADER
from bookwell.platform.http.idempotency import Idempotency
from bookwell.platform.http.idempotency import requested_key
from bookwell.platform.http.prefer import settle
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import NotFound
from bookwell.platform.kernel.principal import Principal

T = TypeVar("T")
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
_PATH_PARAM = re.compile(r"{([a-z_][a-z0-9_]*)}")
_MAX_INTEGRAL_DIGITS = 18  # a float literal is taken for an integer only up to this many digits


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

    @property
    def flask_rule(self) -> str:
        """The path in Flask's syntax: `/v1/resources/<resource_id>`."""
        return _PATH_PARAM.sub(r"<\1>", self.path)


@dataclass(frozen=True)
class Call:
    """What a view receives: the validated request."""

    operation: Operation
    principal: Principal | None
    body: Any = None
    query: Any = None
    path: Mapping[str, str] = field(default_factory=dict)

    @property
    def caller(self) -> Principal:
        """The authenticated caller (only on secured operations)."""
        if self.principal is None:
            raise RuntimeError(f"{self.operation.operation_id} is public: it has no caller")
        return self.principal

    @property
    def organization_id(self) -> str:
        """The caller's organization (only on secured operations)."""
        return self.caller.organization_id


View = Callable[[Call], ResponseReturnValue]


class Dependency(Generic[T]):
    """A factory the app hands a context's views at start-up, called per request (e.g. a unit of work)."""

    def __init__(self, name: str) -> None:
        self._key = f"bookwell.dependency.{name}"

    def init_app(self, app: Flask, factory: Callable[..., T]) -> None:
        """Give this app's views their factory."""
        app.extensions[self._key] = factory

    def __call__(self, **kwargs: Any) -> T:
        factory: Callable[..., T] = current_app.extensions[self._key]
        return factory(**kwargs)


class Views(dict[str, View]):
    """A context's views, keyed by the operationId each one serves."""

    def operation(self, operation_id: str) -> Callable[[View], View]:
        """Register the decorated function as the view of `operation_id`."""

        def register(view: View) -> View:
            if operation_id in self:
                raise ValueError(f"two views for {operation_id}")
            self[operation_id] = view
            return view

        return register


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


def _pointer(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in loc]
    return prefix + "".join("/" + part for part in parts)


def _invalid(error: ValidationError, prefix: str) -> HttpProblem:
    errors = tuple(FieldError(_pointer(prefix, e["loc"]), e["msg"]) for e in error.errors(include_url=False))
    return HttpProblem(
        422,
        "validation_failed",
        "Validation failed",
        "The request does not match the contract.",
        errors=errors,
    )


def _parse_body(operation: Operation) -> BaseModel:
    model, schema = operation.body_model, operation.body_schema
    assert model is not None
    assert schema is not None
    if request.mimetype != "application/json":
        raise HttpProblem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as `Content-Type: application/json`.",
        )
    raw = _integral_numbers_as_integers(request.get_data(cache=True))
    try:
        body = model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise HttpProblem(400, "malformed_json", "Malformed JSON", "The body is not valid JSON.") from error
        raise _invalid(error, "") from error
    if b"\\u0000" in raw.lower():  # JSON can carry U+0000 only escaped; PostgreSQL text cannot hold it
        raise _nul_problem(tuple(_nul_pointers(json.loads(raw), "")))
    if b"null" in raw:
        # The generated models read an optional field's `null` as "absent"; the contract says
        # whether null is allowed, so an explicit null where it is not is refused, not defaulted.
        nulls = tuple(_unexpected_nulls(json.loads(raw), schema, ""))
        if nulls:
            errors = tuple(FieldError(p, "must not be null") for p in nulls)
            raise HttpProblem(
                422, "validation_failed", "Validation failed", "Omit a field instead of sending null.", errors=errors
            )
    return body


def _unexpected_nulls(value: Any, schema: Mapping[str, Any], pointer: str) -> Iterator[str]:
    """Pointers to nulls in `value` where `schema` (resolved) does not admit null."""
    if value is None:
        if not _admits_null(schema):
            yield pointer or "/"
        return
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            inner = properties.get(key, extra if isinstance(extra, dict) else None)
            if inner is not None:
                yield from _unexpected_nulls(item, inner, _pointer(pointer, (key,)))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _unexpected_nulls(item, schema["items"], _pointer(pointer, (index,)))


def _admits_null(schema: Mapping[str, Any]) -> bool:
    kinds = schema.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    return any(_admits_null(branch) for branch in [*schema.get("oneOf", []), *schema.get("anyOf", [])])


def _integral_numbers_as_integers(raw: bytes) -> bytes:
    """The body with `1.0`, `1e2` and the like written as integers, which JSON Schema takes them for
    (a number is an integer when its fractional part is zero) and pydantic's strict mode does not.
    Decided exactly (`2.9999999999999999` is not 3) and only for numbers of up to 18 digits before
    the point; anything else, and a body that is not UTF-8 JSON, is left for the model to judge."""
    found = False

    def number(text: str) -> float | int:
        nonlocal found
        exact = Decimal(text)
        if exact.adjusted() >= _MAX_INTEGRAL_DIGITS or exact != exact.to_integral_value():
            return float(text)  # written back as the same float (repr round-trips)
        found = True
        return int(exact)

    try:
        parsed = json.loads(raw.decode("utf-8"), parse_float=number)
    except (ValueError, RecursionError):
        return raw
    return json.dumps(parsed).encode() if found else raw


def _nul_pointers(value: Any, pointer: str) -> Iterator[str]:
    if isinstance(value, str) and "\x00" in value:
        yield pointer or "/"
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                yield pointer or "/"
            yield from _nul_pointers(item, _pointer(pointer, (key,)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_pointers(item, _pointer(pointer, (index,)))


def _nul_problem(pointers: tuple[str, ...]) -> HttpProblem:
    errors = tuple(FieldError(p, "must not contain the NUL character (U+0000)") for p in pointers)
    return HttpProblem(422, "validation_failed", "Validation failed", "Text must not contain U+0000.", errors=errors)


def _query_args() -> MultiDict[str, str]:
    """The query's parameters; 400 unless it is UTF-8 once percent-decoded (Werkzeug would
    replace what is not, and answer a question nobody asked)."""
    try:
        unquote_to_bytes(request.query_string.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError as error:
        raise HttpProblem(400, "malformed_request", "Malformed request", "The query string is not UTF-8.") from error
    return request.args


def _check_headers(operation: Operation) -> None:
    """400 for a declared header longer than the contract's `maxLength` for it."""
    errors = tuple(
        FieldError(_pointer("/header", (name,)), f"longer than {limit} characters")
        for name, limit in operation.header_limits.items()
        if len(request.headers.get(name, "")) > limit
    )
    if errors:
        raise HttpProblem(400, "invalid_header", "Invalid header", "A header is longer than allowed.", errors=errors)


def _parse_query(model: type[BaseModel] | None) -> BaseModel | None:
    args = _query_args()
    declared = {field.alias or name for name, field in model.model_fields.items()} if model else set()
    unknown = sorted(set(args) - declared)
    if unknown:
        # A misspelt filter silently ignored would answer a different question than the one asked.
        errors = tuple(FieldError(_pointer("/query", (name,)), "unknown query parameter") for name in unknown)
        raise HttpProblem(422, "validation_failed", "Validation failed", "Unknown query parameters.", errors=errors)
    with_nul = tuple(_pointer("/query", (name,)) for name, value in args.items() if "\x00" in value)
    if with_nul:
        raise _nul_problem(with_nul)
    if model is None:
        return None
    try:
        return model.model_validate({name: args[name] for name in declared if name in args})
    except ValidationError as error:
        raise _invalid(error, "/query") from error


def _parse_path(operation: Operation, values: Mapping[str, str]) -> dict[str, str]:
    for name, model in operation.path_models.items():
        try:
            model.model_validate(values[name])
        except ValidationError as error:
            raise NotFound(f"No such object: {values[name]!r}.") from error
    return dict(values)


def bind(
    app: Flask,
    contract: Contract,
    views: Mapping[str, View],
    authenticator: Authenticator,
    idempotency: Idempotency,
) -> None:
    """Route every operation of the contract to its view; refuse to start if either side has no partner."""
    missing = sorted(set(contract.operations) - set(views))
    unknown = sorted(set(views) - set(contract.operations))
    if missing or unknown:
        raise LookupError(f"operations without a view: {missing}; views without an operation: {unknown}")
    for operation in contract.operations.values():
        app.add_url_rule(
            operation.flask_rule,
            endpoint=operation.operation_id,
            view_func=_endpoint(operation, views[operation.operation_id], authenticator, idempotency),
            methods=[operation.method],
            provide_automatic_options=False,
        )


def _endpoint(
    operation: Operation, view: View, authenticator: Authenticator, idempotency: Idempotency
) -> Callable[..., ResponseReturnValue]:
    def handle(principal: Principal | None, path_values: Mapping[str, str]) -> Response:
        _check_headers(operation)
        body = None if operation.body_model is None else _parse_body(operation)
        query = _parse_query(operation.query_model)
        path = _parse_path(operation, path_values)
        call = Call(operation=operation, principal=principal, body=body, query=query, path=path)
        return current_app.make_response(view(call))

    def endpoint(**path_values: str) -> ResponseReturnValue:
        principal = None if operation.scopes is None else authenticate(authenticator, operation.scopes)
        key = None
        if operation.idempotency_key is not None:
            key = requested_key(required=operation.idempotency_key == "required")
        if key is None or principal is None:
            return settle(handle(principal, path_values))
        # settle() after run(): a `Prefer: wait` is served once the request's transaction committed.
        return settle(idempotency.run(principal.organization_id, key, lambda: handle(principal, path_values)))

    endpoint.__name__ = operation.operation_id
    return endpoint


def serve_contract(contract: Contract) -> Response:
    """The contract as JSON, exactly as written."""
    return Response(contract.json_bytes, mimetype="application/json")
