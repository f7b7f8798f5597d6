"""Reading a request against its operation: headers, body (strict JSON), query and path parameters.

Each function raises the problem the contract's conventions call for (400, 415, 422, or 404 for a
malformed id, which is one that never existed) and returns the validated value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import request
from pydantic import BaseModel
from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from bookwell.platform.http.contract.spec import Operation
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import NotFound

_MAX_INTEGRAL_DIGITS = 18  # a float literal is taken for an integer only up to this many digits


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


def parse_body(operation: Operation) -> BaseModel:
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


def check_headers(operation: Operation) -> None:
    """400 for a declared header longer than the contract's `maxLength` for it."""
    errors = tuple(
        FieldError(_pointer("/header", (name,)), f"longer than {limit} characters")
        for name, limit in operation.header_limits.items()
        if len(request.headers.get(name, "")) > limit
    )
    if errors:
        raise HttpProblem(400, "invalid_header", "Invalid header", "A header is longer than allowed.", errors=errors)


def parse_query(model: type[BaseModel] | None) -> BaseModel | None:
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


def parse_path(operation: Operation, values: Mapping[str, str]) -> dict[str, str]:
    for name, model in operation.path_models.items():
        try:
            model.model_validate(values[name])
        except ValidationError as error:
            raise NotFound(f"No such object: {values[name]!r}.") from error
    return dict(values)
