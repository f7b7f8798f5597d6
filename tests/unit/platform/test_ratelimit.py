"""Rate-limit policies parse or are refused with the variable named, and the header values are the
draft's Structured Field Lists (parsed back by `http_sf`)."""

from __future__ import annotations

import http_sf
import pytest
from pydantic import ValidationError

from bookwell.platform.ratelimit import Policy
from bookwell.platform.ratelimit import Usage
from bookwell.platform.ratelimit import default_policies
from bookwell.platform.ratelimit import policy_header
from bookwell.platform.ratelimit import ratelimit_header
from bookwell.settings import Settings

READS = Policy("reads", 600, 60)
ORGANIZATION = Policy("organization", 6000, 60)


def test_the_policy_header_is_a_list_of_named_quotas_with_windows() -> None:
    usages = (Usage(READS, remaining=591, reset_s=42), Usage(ORGANIZATION, remaining=5990, reset_s=42))
    value = policy_header(usages)
    assert value == '"reads";q=600;w=60, "organization";q=6000;w=60'
    assert http_sf.parse(value.encode(), tltype="list") == [
        ("reads", {"q": 600, "w": 60}),
        ("organization", {"q": 6000, "w": 60}),
    ]


def test_the_ratelimit_header_says_what_remains_and_when_the_window_ends() -> None:
    value = ratelimit_header((Usage(READS, remaining=0, reset_s=7),))
    assert value == '"reads";r=0;t=7'
    [(name, params)] = http_sf.parse(value.encode(), tltype="list")  # type: ignore[misc]
    assert (name, params) == ("reads", {"r": 0, "t": 7})
    assert isinstance(name, str)  # a String, as the draft requires, not a Token


def test_no_usages_make_no_field() -> None:
    with pytest.raises(ValueError, match="should not be emitted"):
        ratelimit_header(())


@pytest.mark.parametrize(("text", "quota", "window_s"), [("600/60", 600, 60), (" 1/1 ", 1, 1), ("5/86400", 5, 86400)])
def test_a_policy_parses_from_quota_slash_window(text: str, quota: int, window_s: int) -> None:
    assert Policy.parse("reads", text) == Policy("reads", quota, window_s)


ARABIC_INDIC_ONE = "\u0661"  # a decimal digit to str.isdecimal, not to the setting


@pytest.mark.parametrize(
    "text", ["600", "600/", "/60", "0/60", "10/0", "10/86401", "1.5/60", "-1/60", "ten/60", f"{ARABIC_INDIC_ONE}/60"]
)
def test_a_bad_policy_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"QUOTA/WINDOW_S|the quota must be"):
        Policy.parse("reads", text)


def test_a_policy_built_by_hand_is_checked_too() -> None:
    with pytest.raises(ValueError, match="the quota must be"):
        Policy("writes", 0, 60)


def test_the_defaults_come_from_the_settings() -> None:
    policies = default_policies(Settings.from_env({"BOOKWELL_RATE_LIMIT_WRITES": "5/10"}))
    assert policies["writes"] == Policy("writes", 5, 10)
    assert policies["reads"] == Policy("reads", 600, 60)
    assert set(policies) == {"reads", "writes", "availability", "organization", "auth_failures"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BOOKWELL_RATE_LIMIT_READS", "lots"),
        ("BOOKWELL_RATE_LIMIT_AUTH_FAILURES", "0/60"),
        ("BOOKWELL_RATE_LIMIT_STORAGE_URL", "memcached://127.0.0.1:11211"),
    ],
)
def test_a_bad_rate_limit_setting_is_refused_at_start_up_by_name(variable: str, value: str) -> None:
    with pytest.raises(ValidationError, match=variable):
        Settings.from_env({variable: value})


def test_rate_limits_can_be_switched_off() -> None:
    assert Settings.from_env({"BOOKWELL_RATE_LIMIT_ENABLED": "false"}).rate_limit_enabled is False
