"""Stage: idempotency. `Idempotency-Key` on POST: claim the key, run the request in one transaction,
store the answer with the effect.

The claim commits on its own first, so an identical request racing this one sees it and gets
409 `idempotency_key_in_use`. The view then runs inside one request transaction that every
unit of work joins; a success is stored in that same transaction, so the answer and the
effect commit together or not at all. A 4xx is stored after the (rolled back) transaction;
a 5xx or a 409 that says to retry is not stored, and the key is released for the retry.

An answer that carries a secret (a new API key's token) marks its fields `shown_once`: the stored
copy, and so every replay, has null in their place. A credential never rests in this table (ADR 0018).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from datetime import datetime

from flask import Response
from flask import request

from bookwell.platform.db import Database
from bookwell.platform.http.contract.spec import IDEMPOTENCY_HEADER as HEADER
from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.http.problems import render_error
from bookwell.platform.idempotency import Claim
from bookwell.platform.idempotency import IdempotencyStore
from bookwell.platform.idempotency import StoredResponse
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.context import current
from bookwell.platform.observability.metrics import IDEMPOTENCY

_VALID_KEY = re.compile(r"^[\x20-\x7E]{1,255}$")
_NOT_STORED_HEADERS = frozenset({"x-request-id", "content-length", "date", "set-cookie"})
_SHOWN_ONCE = "bookwell_shown_once"  # the attribute on a Response naming its secret fields


def shown_once(response: Response, *fields: str) -> Response:
    """Mark top-level fields of a JSON answer as secrets shown once: the stored answer that replays
    it has null in their place."""
    setattr(response, _SHOWN_ONCE, fields)
    return response


def requested_key(required: bool) -> str | None:
    """The request's Idempotency-Key; 400 when it is malformed, or missing where required."""
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise HttpProblem(
                400,
                "idempotency_key_required",
                "Idempotency key required",
                f"This operation requires an `{HEADER}` header.",
            )
        return None
    if not _VALID_KEY.match(key):
        raise HttpProblem(
            400,
            "invalid_idempotency_key",
            "Invalid idempotency key",
            f"`{HEADER}` must be 1-255 printable ASCII characters.",
        )
    return key


def _fingerprint() -> str:
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or nested too deep to canonicalise: the bytes as sent
        body = raw
    digest = hashlib.sha256(f"{request.method} {request.path}?".encode() + request.query_string + b"\n")
    digest.update(body)
    return digest.hexdigest()


def _stored(response: Response) -> StoredResponse:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _NOT_STORED_HEADERS}
    body = response.get_data()
    secrets: tuple[str, ...] = getattr(response, _SHOWN_ONCE, ())
    if secrets:
        shown = json.loads(body)
        body = json.dumps(shown | dict.fromkeys(secrets)).encode()
    return StoredResponse(response.status_code, headers, body)


def _storable(response: Response) -> bool:
    retry_later = response.status_code in (409, 429) and "Retry-After" in response.headers
    return response.status_code < 500 and not retry_later


def _replay(stored: StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status, headers=stored.headers)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _in_use(retry_after_s: int) -> HttpProblem:
    """409: the key's request is running. `Retry-After` is when its claim lapses at the latest: by
    then it has answered (a retry gets its answer), or it died and the key is free again."""
    return HttpProblem(
        409,
        "idempotency_key_in_use",
        "Idempotency key in use",
        f"A request with this key is still being processed; retry within {retry_after_s} s.",
        headers={"Retry-After": str(retry_after_s)},
    )


class Idempotency:
    """Runs a keyed request at most once per organization and key."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.store = IdempotencyStore(database)

    def __call__(self, exchange: Exchange, proceed: Proceed) -> Response:
        operation = exchange.operation
        if operation is None or operation.idempotency_key is None:
            return proceed(exchange)
        key = requested_key(required=operation.idempotency_key == "required")
        organization_id = current().organization_id
        if key is None or organization_id is None:
            return proceed(exchange)
        return self.run(organization_id, key, lambda: proceed(exchange))

    def run(self, organization_id: str, key: str, handle: Callable[[], Response]) -> Response:
        """The stored answer for this key, or `handle()`'s answer, stored with its effect."""
        claimed = self.store.claim(organization_id, key, _fingerprint(), utcnow())
        if claimed.stored is not None:
            IDEMPOTENCY.labels("replayed").inc()
            return _replay(claimed.stored)
        if claimed.claim is Claim.IN_USE:
            IDEMPOTENCY.labels("in_use").inc()
            assert claimed.busy_until is not None  # an IN_USE claim says until when
            raise _in_use(max(1, math.ceil((claimed.busy_until - utcnow()).total_seconds())))
        if claimed.claim is Claim.REUSED:
            IDEMPOTENCY.labels("reused").inc()
            raise HttpProblem(
                422, "idempotency_key_reused", "Idempotency key reused", "This key was used for a different request."
            )
        lease = claimed.lease
        assert lease is not None  # a claim to run always carries its lease
        try:
            response = self._run_in_one_transaction(organization_id, key, lease, handle)
        except BaseException:
            self.store.release(organization_id, key, lease)
            raise
        if response.status_code >= 400:
            if _storable(response):
                with self.database.engine.connect() as connection, connection.begin():
                    self.store.complete(
                        connection,
                        organization_id=organization_id,
                        key=key,
                        lease=lease,
                        response=_stored(response),
                        now=utcnow(),
                    )
            else:
                self.store.release(organization_id, key, lease)
        return response

    def _run_in_one_transaction(
        self, organization_id: str, key: str, lease: datetime, handle: Callable[[], Response]
    ) -> Response:
        with self.database.request_transaction() as connection:
            try:
                response = handle()
            except Exception as error:
                rendered = render_error(error)
                if rendered is None:
                    raise
                return rendered  # the transaction rolls back: an error leaves no effect
            if response.status_code < 400:
                stored = self.store.complete(
                    connection,
                    organization_id=organization_id,
                    key=key,
                    lease=lease,
                    response=_stored(response),
                    now=utcnow(),
                )
                if not stored:
                    # This request outlived its lease and another took the key over: keep no effect.
                    raise _in_use(1)
                connection.commit()
            return response
