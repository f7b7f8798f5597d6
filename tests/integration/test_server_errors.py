"""What Gunicorn answers itself, before the app runs, is problem+json with a request id, like every
other answer: a request line over 4 KiB (414), too many or too large headers (431), NUL in a header,
a duplicate Content-Length, Content-Length beside Transfer-Encoding (400). Raw bytes over a socket
to a real Gunicorn with the project's configuration."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bookwell.platform.db import Database
from tests.support.gunicorn import gunicorn


@pytest.fixture
def server(sqlite_database: Database, tmp_path: Path) -> Iterator[int]:
    """Gunicorn (src/bookwell/gunicorn_conf.py, one worker) on the test's SQLite file; its port."""
    with gunicorn(sqlite_database, tmp_path, BOOKWELL_WEB_WORKERS="1") as port:
        yield port


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `raw`, read the answer to the end: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(raw)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GET /v1/resources?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(120)) + b"\r\n",
            431,
            "header_fields_too_large",
        ),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431, "header_fields_too_large"),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n", 400, "malformed_request"),
        (
            b"POST /v1/resources HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            400,
            "malformed_request",
        ),
        (
            b"POST /v1/resources HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            400,
            "malformed_request",
        ),
    ],
    ids=["long-request-line", "too-many-headers", "header-too-large", "nul-in-header", "two-lengths", "length-and-te"],
)
def test_the_servers_own_answers_are_problems_with_a_request_id(
    server: int, raw: bytes, status: int, code: str
) -> None:
    answered, headers, body = exchange(server, raw)
    assert answered == status, body
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["type"] == "https://bookwell.dev/problems/" + code.replace("_", "-")
    assert problem["request_id"] == headers["X-Request-ID"]
    assert b"a" * 100 not in body, "the request's bytes are not echoed"


def test_gunicorn_speaks_in_the_apps_format_and_says_where_it_listens(server: int, tmp_path: Path) -> None:
    status, _, _ = exchange(server, b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200
    lines = [line for line in (tmp_path / "gunicorn.log").read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line, Gunicorn's own too, is one JSON object
    assert any(entry["logger"] == "gunicorn.error" for entry in parsed)
    [ready] = [entry for entry in parsed if entry["event"] == "api_ready"]
    assert (ready["url"], ready["reference"]) == (f"http://127.0.0.1:{server}", f"http://127.0.0.1:{server}/docs")
