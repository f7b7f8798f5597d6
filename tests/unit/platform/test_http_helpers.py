"""Cursor signing and log redaction."""

from __future__ import annotations

import logging

import pytest

from bookwell.platform.http.pagination import CursorCodec
from bookwell.platform.http.pipeline.guess_limit import client_key
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.observability.logging import REDACTED
from bookwell.platform.observability.logging import configure_logging
from bookwell.platform.observability.logging import redact_secrets


def test_a_cursor_round_trips_only_on_its_own_list_and_key() -> None:
    codec = CursorCodec("k1")
    cursor = codec.encode("listResources", "res_01ABC")
    assert codec.decode("listResources", cursor) == "res_01ABC"
    with pytest.raises(HttpProblem):
        codec.decode("listApiKeys", cursor)
    with pytest.raises(HttpProblem):
        CursorCodec("k2").decode("listResources", cursor)


@pytest.mark.parametrize("garbage", ["", "=", "a", "!!!!", "eyJsIjoibGlzdFJlc291cmNlcyIsImEiOiJ4In0"])
def test_garbage_cursors_are_400(garbage: str) -> None:
    with pytest.raises(HttpProblem) as error:
        CursorCodec("k").decode("listResources", garbage)
    assert (error.value.status, error.value.code) == (400, "invalid_cursor")


def test_secrets_are_redacted_by_name_and_by_shape() -> None:
    token = "bw_0123456789abcdef_" + "s" * 43
    event = redact_secrets(
        None,
        "info",
        {
            "event": f"called with {token}",
            "headers": {"Authorization": "Bearer abc", "Accept": "json"},
            "note": "Bearer xyz.abc",
            "password": "hunter2",
            "error": "could not connect to postgresql://admin:hunter2@db:5432/app",
            "exception": "null value in column\nDETAIL:  Failing row contains (org_x, card 4242, null).\n[SQL: ...]",
        },
    )
    assert "hunter2" not in str(event)
    assert "4242" not in str(event)
    assert event["exception"] == f"null value in column\nDETAIL: {REDACTED}\n[SQL: ...]"
    assert event["error"] == f"could not connect to postgresql://admin:{REDACTED}@db:5432/app"
    assert token not in str(event)
    assert event["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert event["note"] == f"Bearer {REDACTED}"
    assert event["password"] == REDACTED


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "address:198.51.100.7"),
        ("2001:db8:1:2:aaaa::1", "address:2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "address:2001:db8:1:2::/64"),  # the same /64: one host
        (None, "address:unknown"),
    ],
)
def test_failed_authentication_is_counted_per_ipv4_address_and_per_ipv6_64(address: str | None, key: str) -> None:
    assert client_key(address) == key


def test_the_console_format_is_one_readable_line_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", fmt="console")
    try:
        logging.getLogger("bookwell.test").warning("something %s", "happened")
        line = capsys.readouterr().out.strip()
    finally:
        configure_logging("INFO")
    assert not line.startswith("{")
    assert "[warning" in line
    assert "something happened" in line
    assert "[bookwell.test]" in line
