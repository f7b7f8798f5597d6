"""The store every host shares: generations and entries in Redis, and a lease per entry so one
process loads it while the others wait for its value (ADR 0035)."""

from __future__ import annotations

import secrets
import time

import redis

from bookwell.platform.cache.core import StoreUnavailable

PREFIX = "bookwell:cache:"
TOKEN_CHARS = 16
GENERATION_TTL_S = 86_400  # longer than any entry; a generation that lapses is replaced by a new random one
LEASE_S = 2.0  # how long other processes wait for a loading process's value before loading themselves
POLL_S = 0.005


class RedisStore:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def lookup(self, generation_key: str, key: str) -> tuple[bytes, bytes | None]:
        try:
            token, entry = (_bytes(found) for found in self._client.mget(PREFIX + generation_key, PREFIX + key))
            if token is None:
                # First read of the scope (or its generation lapsed): a new token, unless another
                # process set one first; entries under any earlier token can never match it.
                self._client.set(PREFIX + generation_key, _token(), nx=True, ex=GENERATION_TTL_S)
                token = _bytes(self._client.get(PREFIX + generation_key))
                if token is None:
                    raise StoreUnavailable("the generation was evicted as soon as it was set")
                return token, None
        except redis.RedisError as error:
            raise StoreUnavailable(error) from error
        return token, _value(entry, token)

    def put(self, key: str, token: bytes, value: bytes, ttl_s: float) -> None:
        try:
            self._client.set(PREFIX + key, token + value, px=max(int(ttl_s * 1000), 1))
        except redis.RedisError as error:
            raise StoreUnavailable(error) from error

    def lead(self, key: str, token: bytes) -> bool:
        try:
            return bool(self._client.set(_lease(key), token, nx=True, px=int(LEASE_S * 1000)))
        except redis.RedisError as error:
            raise StoreUnavailable(error) from error

    def wait(self, generation_key: str, key: str, token: bytes) -> bytes | None:
        deadline = time.monotonic() + LEASE_S
        try:
            while time.monotonic() < deadline:
                time.sleep(POLL_S)
                found = self._client.mget(PREFIX + generation_key, PREFIX + key, _lease(key))
                current, entry, lease = (_bytes(each) for each in found)
                if current != token:
                    return None  # written meanwhile: what the leader loaded may be stale, load afresh
                if (value := _value(entry, token)) is not None:
                    return value
                if lease is None:
                    return None  # the leader failed or kept nothing
        except redis.RedisError as error:
            raise StoreUnavailable(error) from error
        return None

    def done(self, key: str) -> None:
        try:
            self._client.delete(_lease(key))
        except redis.RedisError as error:
            raise StoreUnavailable(error) from error

    def bump(self, generation_key: str) -> None:
        try:
            self._client.set(PREFIX + generation_key, _token(), ex=GENERATION_TTL_S)
        except redis.RedisError as error:
            raise StoreUnavailable(error) from error


def _bytes(found: object) -> bytes | None:
    if found is None or isinstance(found, bytes):
        return found
    raise StoreUnavailable(f"not a cache value: {type(found).__name__}")  # a client set to decode answers


def _token() -> bytes:
    return secrets.token_hex(TOKEN_CHARS // 2).encode()


def _lease(key: str) -> str:
    return PREFIX + "lease:" + key


def _value(entry: bytes | None, token: bytes) -> bytes | None:
    if entry is None or entry[:TOKEN_CHARS] != token:
        return None
    return entry[TOKEN_CHARS:]
