"""The answers Gunicorn gives itself, before the app sees a request, as problem+json with a request id.

A request line over `limit_request_line` (414), too many or too large headers (431), CR, LF or NUL
in a header, a duplicate `Content-Length` or one beside `Transfer-Encoding` (400), an unsupported
transfer coding (501): Gunicorn answers these from `Worker.handle_error` through
`gunicorn.util.write_error`, as HTML. `install()` (called by `src/bookwell/gunicorn_conf.py` in each
worker) makes that function write a problem instead: the same status, a stable `code`, a generic
`detail` (the request's own bytes are never echoed), and a fresh `X-Request-ID` that is logged.
"""

from __future__ import annotations

import json
import socket
import uuid

import structlog
from gunicorn import util

from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.http.problems import problem_body

log = structlog.get_logger("bookwell.http")

# status -> (code, title, detail)
SERVER_PROBLEMS = {
    400: (
        "malformed_request",
        "Malformed request",
        "The request is not valid HTTP/1.1 (its request line or a header).",
    ),
    403: ("forbidden", "Forbidden", "The request was refused."),
    414: ("uri_too_long", "URI too long", "The request line is longer than 4094 bytes."),
    417: ("expectation_failed", "Expectation failed", "The `Expect` header asks for what the server does not do."),
    431: (
        "header_fields_too_large",
        "Request header fields too large",
        "The request has more than 100 headers, or a header longer than 8190 bytes.",
    ),
    501: ("not_implemented", "Not implemented", "The request uses a transfer coding the server does not support."),
}
_FALLBACK = ("internal_error", "Internal server error", "The server failed to read the request.")


def write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """`gunicorn.util.write_error`'s replacement: the problem+json form of Gunicorn's own answer."""
    code, title, detail = SERVER_PROBLEMS.get(status_int, _FALLBACK)
    request_id = uuid.uuid4().hex
    body = json.dumps(
        problem_body(HttpProblem(status_int, code, title, detail), instance="", request_id=request_id)
    ).encode()
    log.warning("request_refused_by_server", status=status_int, code=code, request_id=request_id, reason=mesg[:200])
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"X-Request-ID: {request_id}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Make Gunicorn's own error answers problems (in the worker process that calls it)."""
    util.write_error = write_problem
