"""The store of one host: entries in each process's memory, generations in a memory-mapped file
that every process of the host maps, so a write in any of them ends the others' entries (ADR 0035).

Right only where every process that writes runs on this host (the embedded default, or a single
host on PostgreSQL); several hosts share Redis instead.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from bookwell.platform.cache.core import StoreUnavailable

SLOTS = 1 << 16  # scopes share a slot by hash: a write then also ends its neighbours' entries, never fewer
TOKEN_BYTES = 8
MAX_ENTRIES = 10_000


class LocalStore:
    """Entries in this process, at most `max_entries` (the least recently read leave first)."""

    def __init__(self, generations_file: Path, *, max_entries: int = MAX_ENTRIES) -> None:
        size = SLOTS * TOKEN_BYTES
        generations_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(generations_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size < size:
                os.ftruncate(descriptor, size)  # zeros; a second process doing the same changes nothing
            self._generations = mmap.mmap(descriptor, size)  # shared: every process sees every write
        finally:
            os.close(descriptor)
        self._entries: OrderedDict[str, tuple[bytes, float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def lookup(self, generation_key: str, key: str) -> tuple[bytes, bytes | None]:
        token = self._generations[_slot(generation_key)]
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return token, None
            if entry[0] != token or entry[1] <= time.monotonic():
                del self._entries[key]
                return token, None
            self._entries.move_to_end(key)
            return token, entry[2]

    def put(self, key: str, token: bytes, value: bytes, ttl_s: float) -> None:
        with self._lock:
            self._entries[key] = (token, time.monotonic() + ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def lead(self, key: str, token: bytes) -> bool:
        return True  # this process's flight is the only one there is to share

    def wait(self, generation_key: str, key: str, token: bytes) -> bytes | None:
        return None

    def done(self, key: str) -> None:
        pass

    def bump(self, generation_key: str) -> None:
        try:
            # Random, not a counter: two writers at once still leave a token no earlier reader saw.
            # A reader that catches the 8 bytes half-written sees a third token, which is as safe.
            self._generations[_slot(generation_key)] = os.urandom(TOKEN_BYTES)
        except (ValueError, OSError) as error:
            raise StoreUnavailable(error) from error


def _slot(generation_key: str) -> slice:
    digest = hashlib.blake2b(generation_key.encode(), digest_size=8).digest()
    start = int.from_bytes(digest) % SLOTS * TOKEN_BYTES
    return slice(start, start + TOKEN_BYTES)
