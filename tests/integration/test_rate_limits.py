"""Rate limits through real Gunicorn workers (2 processes x 4 threads), counted in the embedded
default (the application's database) and in Redis: exactly the quota goes through however the
requests spread over workers, the headers are structured fields a standard parser reads, a 429 says
how long to wait, keys and organizations are counted apart, failed authentication is limited per
address, and a Redis that stops mid-run costs counting, never an answer."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import http_sf
import httpx
import pytest
import redis

from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.kernel.principal import Principal
from tests.conftest import REDIS_URL
from tests.conftest import UNLIMITED_ENV
from tests.conftest import require_service
from tests.support.gunicorn import gunicorn

QUOTA, EXTRA = 20, 12
WORKERS = {
    "BOOKWELL_WEB_WORKERS": "2",
    "BOOKWELL_WEB_THREADS": "4",
    "BOOKWELL_LOG_LEVEL": "WARNING",
    # The counters share SQLite's one writer with the rest: on a busy machine a burst may wait for
    # it longer than the default 3 s, and a counter that times out fails open (not what this tests).
    "BOOKWELL_SQLITE_BUSY_TIMEOUT_MS": "30000",
}


def _organization(database: Database, name: str) -> tuple[str, str]:
    organization, token = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name=name)
    return organization.id, token


def _credential(database: Database, token: str) -> Principal:
    found = identity_service.authenticate(uow=SqlIdentityUnitOfWork(database, readonly=True), token=token)
    assert found is not None
    return found.principal


def _second_key(database: Database, first_token: str) -> str:
    granted_by = _credential(database, first_token)
    _, token = identity_service.create_api_key(
        uow=SqlIdentityUnitOfWork(database), granted_by=granted_by, name="second", scopes=granted_by.scopes
    )
    return token


def _get(port: int, token: str | None, path: str = "/v1/resources") -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=30)


def _burst(port: int, token: str | None, count: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: _get(port, token), range(count)))


def _policies(response: httpx.Response) -> dict[str, dict[str, int]]:
    """`RateLimit-Policy` read by a structured-fields parser: {name: {"q": ..., "w": ...}}."""
    return {
        str(name): dict(params)
        for name, params in http_sf.parse(response.headers["RateLimit-Policy"].encode(), tltype="list")
    }


def _remaining(response: httpx.Response) -> dict[str, dict[str, int]]:
    """`RateLimit` read by a structured-fields parser: {name: {"r": ..., "t": ...}}."""
    return {
        str(name): dict(params) for name, params in http_sf.parse(response.headers["RateLimit"].encode(), tltype="list")
    }


@pytest.fixture(params=["database", "redis"])
def storage(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Where the counters are: the embedded default (the application's database) or Redis."""
    if request.param == "database":
        yield {}
        return
    require_service("redis")
    yield {"BOOKWELL_RATE_LIMIT_STORAGE_URL": REDIS_URL}
    # Every key this test made names one of its organizations or credentials (marked by the test).
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match="bookwell:ratelimit/*"):
            if any(mark in key.decode() for mark in request.node.stash.get(_MARKS, ())):
                client.delete(key)
    finally:
        client.close()


_MARKS = pytest.StashKey[list[str]]()


def _mark(request: pytest.FixtureRequest, *marks: str) -> None:
    request.node.stash.setdefault(_MARKS, []).extend(marks)


def test_quota_plus_k_concurrent_requests_give_exactly_the_quota(
    sqlite_database: Database, tmp_path: Path, storage: dict[str, str], request: pytest.FixtureRequest
) -> None:
    organization_id, token = _organization(sqlite_database, "Burst")
    _mark(request, organization_id, _credential(sqlite_database, token).credential_id)
    limits = {**UNLIMITED_ENV, "BOOKWELL_RATE_LIMIT_READS": f"{QUOTA}/600"}
    with gunicorn(sqlite_database, tmp_path, **WORKERS, **limits, **storage) as port:
        answers = _burst(port, token, QUOTA + EXTRA)
    assert Counter(a.status_code for a in answers) == {200: QUOTA, 429: EXTRA}
    for answer in answers:
        policies, remaining = _policies(answer), _remaining(answer)
        assert policies["reads"] == {"q": QUOTA, "w": 600}
        assert set(remaining) == set(policies) == {"reads", "organization"}
        assert 0 < remaining["reads"]["t"] <= 600
    for refused in (a for a in answers if a.status_code == 429):
        body = refused.json()
        assert (refused.headers["content-type"], body["code"]) == ("application/problem+json", "rate_limited")
        left = _remaining(refused)["reads"]
        assert left["r"] == 0
        assert int(refused.headers["Retry-After"]) >= left["t"]  # not back before the window resets
    served = sorted(_remaining(a)["reads"]["r"] for a in answers if a.status_code == 200)
    assert served == list(range(QUOTA))  # each success saw its own count: no worker counted alone


def test_keys_and_organizations_are_counted_apart(
    sqlite_database: Database, tmp_path: Path, storage: dict[str, str], request: pytest.FixtureRequest
) -> None:
    first_org, first_token = _organization(sqlite_database, "First")
    second_token = _second_key(sqlite_database, first_token)
    other_org, other_token = _organization(sqlite_database, "Other")
    tokens = (first_token, second_token, other_token)
    _mark(request, first_org, other_org, *(_credential(sqlite_database, t).credential_id for t in tokens))
    limits = {**UNLIMITED_ENV, "BOOKWELL_RATE_LIMIT_READS": "5/600", "BOOKWELL_RATE_LIMIT_ORGANIZATION": "8/600"}
    with gunicorn(sqlite_database, tmp_path, **WORKERS, **limits, **storage) as port:
        first = [_get(port, first_token).status_code for _ in range(6)]
        second = [_get(port, second_token) for _ in range(4)]
        other = [_get(port, other_token).status_code for _ in range(5)]
    assert first == [200] * 5 + [429]  # the key's own reads policy
    # The first key's refusal did not spend the organization's quota: the second key gets its 3 of
    # the 8 (5 + 3), then is refused on the organization's policy though it has reads left.
    assert [a.status_code for a in second] == [200, 200, 200, 429]
    assert _remaining(second[-1])["organization"]["r"] == 0
    assert _remaining(second[-1])["reads"]["r"] > 0
    assert other == [200] * 5  # another organization counts from zero


def test_failed_authentication_is_limited_per_address(sqlite_database: Database, tmp_path: Path) -> None:
    _, token = _organization(sqlite_database, "Guarded")
    limits = {**UNLIMITED_ENV, "BOOKWELL_RATE_LIMIT_AUTH_FAILURES": "5/600"}
    with gunicorn(sqlite_database, tmp_path, **WORKERS, **limits) as port:
        guesses = [_get(port, f"bw_guess_{n}") for n in range(7)]
        afterwards = _get(port, token)
    assert [g.status_code for g in guesses] == [401] * 5 + [429] * 2
    assert _remaining(guesses[4])["auth_failures"]["r"] == 0
    assert guesses[-1].json()["code"] == "rate_limited"
    assert int(guesses[-1].headers["Retry-After"]) >= _remaining(guesses[-1])["auth_failures"]["t"]
    assert afterwards.status_code == 429  # the address waits out the window, a right key or not


def test_redis_stopped_mid_run_costs_counting_not_answers(
    sqlite_database: Database, tmp_path: Path, redis_of_its_own: tuple[subprocess.Popen[bytes], str]
) -> None:
    process, url = redis_of_its_own
    _, token = _organization(sqlite_database, "Outage")
    limits = {**UNLIMITED_ENV, "BOOKWELL_RATE_LIMIT_READS": "1000/600", "BOOKWELL_RATE_LIMIT_STORAGE_URL": url}
    with gunicorn(sqlite_database, tmp_path, **WORKERS, **limits) as port:
        before = _burst(port, token, 8)
        process.terminate()
        process.wait(timeout=10)
        during = _burst(port, token, 16)
        metrics = _get(port, None, "/metrics").text
    assert all(a.status_code == 200 and "RateLimit" in a.headers for a in before)
    assert [a.status_code for a in during] == [200] * 16  # served, fail open
    assert all("RateLimit" not in a.headers for a in during)  # and not pretending to count
    unavailable = [line for line in metrics.splitlines() if line.startswith("bookwell_rate_limit_unavailable_total")]
    assert unavailable, metrics
    assert float(unavailable[0].split()[-1]) >= 16
    assert "rate_limit_unavailable" in (tmp_path / "gunicorn.log").read_text()
