"""Stage: authentication. The caller of a secured operation by its bearer credential (401 without a
valid one), put in the kernel's request context."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response
from flask import request

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.kernel.context import authenticated
from bookwell.platform.kernel.principal import Principal

Authenticator = Callable[[str], Principal | None]
"""Resolves a bearer token to its principal, or None when the token is unknown, malformed or revoked."""


def _unauthorized(detail: str, *, token_given: bool) -> HttpProblem:
    challenge = 'Bearer realm="bookwell"' + (', error="invalid_token"' if token_given else "")
    return HttpProblem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": challenge},
    )


def bearer_token() -> str | None:
    """The token of `Authorization: Bearer <token>`, or None when the header is absent."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("The Authorization header must be `Bearer <token>`.", token_given=True)
    return token.strip()


def authenticate(authenticator: Authenticator) -> Principal:
    """The caller's principal, or 401 (no credential, or one that is unknown, malformed or revoked)."""
    token = bearer_token()
    if token is None:
        raise _unauthorized(
            "This operation needs a credential: `Authorization: Bearer <token>`.",
            token_given=False,
        )
    principal = authenticator(token)
    if principal is None:
        raise _unauthorized("The credential is unknown or revoked.", token_given=True)
    return principal


class Authentication:
    """Authenticates every secured operation with `authenticator` and makes the caller current;
    public operations pass as they are. Scopes are the authorization stage's, after the rate limits."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def __call__(self, exchange: Exchange, proceed: Proceed) -> Response:
        if exchange.operation is None or exchange.operation.scopes is None:
            return proceed(exchange)
        authenticated(authenticate(self.authenticator))
        response = proceed(exchange)
        # The answer is the credential's: no shared cache may keep it, and a private one keys it by the header.
        response.vary.add("Authorization")
        response.cache_control.private = True
        return response
