"""Bearer authentication and scope checks, applied by the contract binding to every secured operation."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from flask import g
from flask import request

from bookwell.platform.http.problems import HttpProblem
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


def authenticate(authenticator: Authenticator, required_scopes: frozenset[str]) -> Principal:
    """The caller's principal, or 401 (no or bad credential) / 403 (a scope is missing)."""
    token = bearer_token()
    if token is None:
        raise _unauthorized(
            "This operation needs a credential: `Authorization: Bearer <token>`.",
            token_given=False,
        )
    principal = authenticator(token)
    if principal is None:
        raise _unauthorized("The credential is unknown or revoked.", token_given=True)
    g.principal = principal
    g.organization_id = principal.organization_id
    structlog.contextvars.bind_contextvars(organization_id=principal.organization_id)
    missing = required_scopes - principal.scopes
    if missing:
        needed = " ".join(sorted(required_scopes))
        raise HttpProblem(
            403,
            "insufficient_scope",
            "Forbidden",
            f"The credential lacks the scope(s) {', '.join(sorted(missing))}.",
            headers={"WWW-Authenticate": f'Bearer realm="bookwell", error="insufficient_scope", scope="{needed}"'},
        )
    return principal
