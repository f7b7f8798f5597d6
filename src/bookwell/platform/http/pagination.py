"""Cursor pagination: opaque, signed cursors bound to the list that issued them, and the page body."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from urllib.parse import urlencode

from flask import Flask
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request

from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.kernel.context import current
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest

T = TypeVar("T")


class CursorCodec:
    """Signs `{list, after}` so a client can neither forge a cursor nor reuse one on another list."""

    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(("cursor:" + secret_key).encode()).digest()

    def encode(self, scope: str, after: str) -> str:
        payload = json.dumps({"l": scope, "a": after}, separators=(",", ":")).encode()
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + signature).decode().rstrip("=")

    def decode(self, scope: str, cursor: str) -> str:
        """The `after` key of a cursor this list issued; 400 for anything else."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, signature = raw[:-16], raw[-16:]
            expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
            if len(raw) <= 16 or not hmac.compare_digest(signature, expected):
                raise ValueError("bad signature")
            data = json.loads(payload)
            if data["l"] != scope or not isinstance(data["a"], str):
                raise ValueError("cursor of another list")
            return str(data["a"])
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise HttpProblem(
                400,
                "invalid_cursor",
                "Invalid cursor",
                "The cursor was not issued by this list (this operation, organization and filters); start without one.",
            ) from error


def init_app(app: Flask, secret_key: str) -> None:
    """Sign this app's cursors with `secret_key`."""
    app.extensions["bookwell.cursors"] = CursorCodec(secret_key)


def _codec() -> CursorCodec:
    codec: CursorCodec = current_app.extensions["bookwell.cursors"]
    return codec


_NOT_FILTERS = frozenset({"cursor", "limit"})


def _bound(scope: str) -> str:
    """The list a cursor works on: `scope` (the operation), the caller's organization and the
    request's filters (every query parameter but `cursor` and `limit`, which may change between pages)."""
    filters = sorted((k, v) for k, values in request.args.lists() if k not in _NOT_FILTERS for v in values)
    return json.dumps([scope, current().organization_id, filters], separators=(",", ":"))


def page_request(scope: str, limit: int, cursor: str | None) -> PageRequest:
    """Turn `?limit=&cursor=` into a keyset request; `scope` names the list (its operationId). A
    cursor works only on the list, organization and filters that issued it (400 otherwise)."""
    return PageRequest(limit=limit, after=None if cursor is None else _codec().decode(_bound(scope), cursor))


def page_response(
    scope: str,
    page: Page[T],
    *,
    present: Callable[[T], dict[str, Any]],
    key: Callable[[T], str],
) -> Response:
    """`{data, has_more, next_cursor}` and, when more follow, `Link: <...>; rel="next"`."""
    next_cursor = _codec().encode(_bound(scope), key(page.items[-1])) if page.has_more and page.items else None
    response = jsonify(
        {
            "data": [present(item) for item in page.items],
            "has_more": next_cursor is not None,
            "next_cursor": next_cursor,
        }
    )
    if next_cursor is not None:
        query = {k: v for k, v in request.args.items() if k != "cursor"} | {"cursor": next_cursor}
        response.headers["Link"] = f'<{request.base_url}?{urlencode(query)}>; rel="next"'
    return response
