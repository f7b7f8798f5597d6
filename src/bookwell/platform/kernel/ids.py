"""Prefixed, time-sortable identifiers: `res_` + 26 Crockford base32 characters (48-bit ms time, 80 random bits)."""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIXES = frozenset({"org", "key", "res", "bkg", "pay", "rfd", "evt", "whe", "whd", "dl", "jf", "sag", "sst"})


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


class _MonotonicBodies:
    """Id bodies that strictly increase within this process, even within one millisecond.

    Events of one transaction are made in order and listed oldest first by id, so two made in
    the same millisecond must not sort at random: the second takes the first's random part + 1.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            candidate = ((time.time_ns() // 1_000_000) << 80) | secrets.randbits(80)
            self._last = max(candidate, self._last + 1)
            return self._last


_bodies = _MonotonicBodies()


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """A new id of the given type; within a process, every id sorts after the ids made before it."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    body = _bodies.next() if now_ms is None else (now_ms << 80) | secrets.randbits(80)
    return f"{prefix}_{_base32(body, 26)}"
