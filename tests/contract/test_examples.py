"""Every example in the contract is valid, and every parameter, request body and response has one.

The reference at `/docs` (Swagger UI) shows, and "Try it out" sends, an example built from the
schema: an explicit example where there is one, else one made up from the schema (a string
matching a pattern, "string" for free text), which is what made "Try it out" need hand-editing.
So each value Swagger UI would show is built here the way it builds it, but with no made-up
part allowed: every free value must come from an example written in the contract, and the whole
must validate against its schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema import FormatChecker
from referencing import Registry
from referencing import Resource
from referencing.jsonschema import DRAFT202012

from bookwell.app import CONTRACT_V1
from bookwell.platform.http.contract.spec import HTTP_METHODS

CONTRACT: dict[str, Any] = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))
_URI = "urn:bookwell:contract:v1"
_REGISTRY = Registry().with_resource(_URI, Resource.from_contents(CONTRACT, default_specification=DRAFT202012))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _REGISTRY.resolver().lookup(_URI + node["$ref"]).contents
    return node


def _anchored(node: Any) -> Any:
    """A part of the contract with its local `$ref`s pointing into the whole contract."""
    if isinstance(node, dict):
        return {k: _URI + v if k == "$ref" and v.startswith("#") else _anchored(v) for k, v in node.items()}
    return [_anchored(v) for v in node] if isinstance(node, list) else node


def _validate(value: Any, schema: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(_anchored(schema), registry=_REGISTRY, format_checker=FormatChecker())
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(the whole)'}: {error.message}"
        for error in validator.iter_errors(value)
    ]


def _written_examples(node: Any, where: str = "#", *, names: bool = False) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(where, example, schema) for every example written in the contract (`names`: `node` maps
    property names to schemas, so none of its keys is a keyword)."""
    if isinstance(node, list):
        for index, value in enumerate(node):
            yield from _written_examples(value, f"{where}/{index}")
        return
    if not isinstance(node, dict):
        return
    if not names and isinstance(node.get("schema"), dict):  # a parameter or a media type
        if "example" in node:
            yield where, node["example"], node["schema"]
        for name, example in node.get("examples", {}).items():
            yield f"{where}/examples/{name}", _resolve(example)["value"], node["schema"]
    elif not names:  # a schema, or any other object of the contract
        for index, example in enumerate(node["examples"] if isinstance(node.get("examples"), list) else []):
            yield f"{where}/examples/{index}", example, node
        if "example" in node:
            yield f"{where}/example", node["example"], node
    for key, value in node.items():
        if names or key not in ("example", "examples"):  # an example's own content is data, not contract
            yield from _written_examples(value, f"{where}/{key}", names=not names and key == "properties")


_NOTHING = object()


def _written(schema: dict[str, Any]) -> Any:
    """The value Swagger UI takes from the schema itself, or _NOTHING."""
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    for keyword in ("example", "const", "default"):
        if keyword in schema:
            return schema[keyword]
    return schema["enum"][0] if "enum" in schema else _NOTHING


def sample(schema: dict[str, Any], where: str, made_up: list[str]) -> Any:
    """The example Swagger UI shows for `schema`; each part it would have to invent (no example,
    enum, const or default) is added to `made_up`."""
    written = _written(schema)
    if written is not _NOTHING:
        return written
    if "$ref" in schema:
        return sample(_resolve(schema), schema["$ref"], made_up)
    if "allOf" in schema:
        merged: Any = {}
        for index, part in enumerate(schema["allOf"]):
            value = sample(part, f"{where}/allOf/{index}", made_up)
            merged = merged | value if isinstance(value, dict) and isinstance(merged, dict) else value
        return merged
    for keyword in ("oneOf", "anyOf"):  # Swagger UI shows a branch (the first): each must stand on its own
        if keyword in schema:
            branches = [sample(part, f"{where}/{keyword}/{i}", made_up) for i, part in enumerate(schema[keyword])]
            return next((branch for branch in branches if branch is not None), None)
    return _structure(schema, where, made_up)


def _structure(schema: dict[str, Any], where: str, made_up: list[str]) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object" or "properties" in schema:
        if not schema.get("properties"):
            made_up.append(f"{where}: an object with no properties and no example")
        return {
            name: sample(part, f"{where}/properties/{name}", made_up)
            for name, part in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [sample(schema["items"], f"{where}/items", made_up)]
    if kind not in ("boolean", "null"):
        made_up.append(f"{where}: a {kind} with no example")
    return True if kind == "boolean" else None


def _shown_values() -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, schema) of each parameter, request body and response body that has no example of
    its own (those are checked by the test above), whose example Swagger UI builds from the schema."""
    for path, item in CONTRACT["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = item[method]
            for parameter in map(_resolve, item.get("parameters", []) + operation.get("parameters", [])):
                if "example" not in parameter:
                    yield f"{method} {path} parameter {parameter['name']}", parameter["schema"]
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                if "example" not in content:
                    yield f"{method} {path} request {media}", content["schema"]
            for status, response in operation["responses"].items():
                for media, content in _resolve(response).get("content", {}).items():
                    if "example" not in content:
                        yield f"{method} {path} {status} {media}", content["schema"]


@pytest.mark.parametrize(("where", "example", "schema"), list(_written_examples(CONTRACT)), ids=lambda v: str(v)[:80])
def test_every_example_written_in_the_contract_validates_against_its_schema(
    where: str, example: Any, schema: dict[str, Any]
) -> None:
    bare = {key: value for key, value in schema.items() if key not in ("example", "examples")}
    assert _validate(example, bare) == [], where


def test_required_parameters_are_filled_in_and_optional_ones_left_empty() -> None:
    """Swagger UI fills a parameter's input with its `example` (or its schema's singular `example`)
    and sends it: a required one must have one, an optional one must not (a filter or a cursor
    filled in would change what "Try it out" does); its schema's `examples` are only shown."""
    wrong = []
    for path, item in CONTRACT["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            for parameter in map(_resolve, item.get("parameters", []) + item[method].get("parameters", [])):
                filled = "example" in parameter or "example" in _resolve(parameter["schema"])
                if filled != parameter.get("required", False):
                    wrong.append(f"{method} {path} {parameter['name']}: required={parameter.get('required', False)}")
    assert wrong == []


def test_every_parameter_request_and_response_shows_a_realistic_example() -> None:
    made_up: list[str] = []
    invalid: list[str] = []
    for where, schema in _shown_values():
        value = sample(schema, where, made_up)
        invalid.extend(f"{where}: {problem}" for problem in _validate(value, schema))
    assert made_up == [], "Swagger UI would make these up:\n" + "\n".join(sorted(set(made_up)))
    assert invalid == [], "examples built from the contract that break their schema:\n" + "\n".join(invalid)
