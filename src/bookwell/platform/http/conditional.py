"""Conditional requests driven by a version column: strong ETags, If-None-Match (304), If-Match (428/412)."""

from __future__ import annotations

import re

from flask import Response
from flask import request

from bookwell.platform.kernel.errors import PreconditionRequired

_VERSION_TAG = re.compile(r"^v(\d{1,18})$")


def etag(version: int) -> str:
    """The strong validator of an object at `version` (unquoted; Werkzeug quotes it)."""
    return f"v{version}"


def with_etag(response: Response, version: int) -> Response:
    """Attach the object's ETag to a response."""
    response.set_etag(etag(version))
    return response


def not_modified(tag: str) -> Response | None:
    """A 304 when `If-None-Match` already holds the current tag (e.g. `etag(version)`), else None."""
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
        response.set_etag(tag)
        return response
    return None


def required_versions() -> frozenset[int] | None:
    """The versions `If-Match` accepts (None for `*`); 428 when the header is missing.

    Weak or foreign tags match no version, so they end in 412 once compared.
    """
    if "If-Match" not in request.headers:
        raise PreconditionRequired("This operation requires `If-Match` with the object's current ETag.")
    if_match = request.if_match
    if if_match.star_tag:
        return None
    versions = set()
    for tag in if_match.as_set():
        match = _VERSION_TAG.match(tag or "")
        if match:
            versions.add(int(match.group(1)))
    return frozenset(versions)
