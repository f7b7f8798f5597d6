"""RFC 9457 problem details: the one place errors become HTTP responses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from flask import Flask
from flask import Response
from flask import request
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from bookwell.platform.kernel.context import current
from bookwell.platform.kernel.errors import DomainError
from bookwell.platform.kernel.errors import ErrorKind
from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import Unavailable

PROBLEM_BASE = "https://bookwell.dev/problems/"
STATUS_BY_KIND = {
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PRECONDITION_FAILED: 412,
    ErrorKind.INVALID: 422,
    ErrorKind.PRECONDITION_REQUIRED: 428,
    ErrorKind.UNAVAILABLE: 503,
}
# Werkzeug's own errors, by status: the stable code and title we give them.
HTTP_CODES = {
    400: ("malformed_request", "Malformed request"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}

log = structlog.get_logger("bookwell.http")


class HttpProblem(Exception):
    """An error the HTTP layer raises itself (auth, media type, malformed JSON)."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        errors: tuple[FieldError, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.errors = errors
        self.headers = dict(headers or {})


def problem_body(problem: HttpProblem, *, instance: str, request_id: str) -> dict[str, Any]:
    """The RFC 9457 body of a problem (also for answers the server gives before the app runs)."""
    return {
        "type": PROBLEM_BASE + problem.code.replace("_", "-"),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        "code": problem.code,
        "request_id": request_id,
    }


def problem_response(problem: HttpProblem) -> Response:
    """Render a problem as `application/problem+json`."""
    body = problem_body(problem, instance=request.path, request_id=current().request_id or "")
    if problem.errors:
        body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in problem.errors]
    return Response(
        json.dumps(body),
        status=problem.status,
        headers=problem.headers,
        mimetype="application/problem+json",
    )


def from_domain_error(error: DomainError) -> HttpProblem:
    """The HTTP form of a context's error."""
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return HttpProblem(
        STATUS_BY_KIND[error.kind], error.code, error.title, error.detail, errors=error.errors, headers=headers
    )


def _from_http_exception(error: HTTPException) -> HttpProblem:
    status = error.code or 500
    code, title = HTTP_CODES.get(status, ("http_error", error.name))
    headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
    return HttpProblem(status, code, title, error.description or title, headers=headers)


def render_error(error: Exception) -> Response | None:
    """The problem response for an error we answer on purpose, or None for an unexpected one."""
    if isinstance(error, HttpProblem):
        return problem_response(error)
    if isinstance(error, DomainError):
        return problem_response(from_domain_error(error))
    if isinstance(error, HTTPException):
        return problem_response(_from_http_exception(error))
    if isinstance(error, PoolTimeout):  # every connection busy for the pool's timeout: overloaded, not broken
        return problem_response(
            from_domain_error(Unavailable("No database connection was free in time; retry shortly."))
        )
    return None


def init_app(app: Flask) -> None:
    """Render every error, ours, Werkzeug's and unexpected ones, as problem+json."""

    @app.errorhandler(HttpProblem)
    @app.errorhandler(DomainError)
    @app.errorhandler(HTTPException)
    @app.errorhandler(PoolTimeout)
    def _expected(error: Exception) -> Response:
        response = render_error(error)
        assert response is not None
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # The traceback goes to the log, never to the client: it quotes the request id instead.
        log.exception("unhandled_exception", error_type=type(error).__name__)
        return problem_response(
            HttpProblem(
                500,
                "internal_error",
                "Internal error",
                "An unexpected error occurred; quote the request_id.",
            )
        )
