"""The `RateLimit-Policy` and `RateLimit` response fields of draft-ietf-httpapi-ratelimit-headers (-10),
written as Structured Field Lists (RFC 9651) by `http_sf`:
`RateLimit-Policy: "reads";q=600;w=60, "organization";q=6000;w=60` and `RateLimit: "reads";r=591;t=42`."""

from __future__ import annotations

from collections.abc import Iterable

import http_sf
from http_sf.types import ItemType
from http_sf.types import ParamsType

from bookwell.platform.ratelimit.limiter import Usage

POLICY_HEADER = "RateLimit-Policy"
RATELIMIT_HEADER = "RateLimit"


def policy_header(usages: Iterable[Usage]) -> str:
    """The `RateLimit-Policy` value: each policy's name (a String) with its quota `q` and window `w` in seconds.

    ValueError when `usages` is empty (a decision that failed open has none): then send no field.
    """
    return http_sf.ser([_member(u.policy.name, {"q": u.policy.quota, "w": u.policy.window_s}) for u in usages])


def ratelimit_header(usages: Iterable[Usage]) -> str:
    """The `RateLimit` value: each policy's name with what remains `r` and the seconds `t` until its window ends.

    ValueError when `usages` is empty, as for `policy_header`.
    """
    return http_sf.ser([_member(u.policy.name, {"r": u.remaining, "t": u.reset_s}) for u in usages])


def _member(name: str, params: ParamsType) -> ItemType:
    """A List member: the policy's name as a String (the draft requires one), with its parameters."""
    return (name, params)
