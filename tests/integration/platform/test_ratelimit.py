"""The rate limiter on SQLite, PostgreSQL and Redis: exact under threads and processes, honest
remaining and reset values, independent keys, `test()` that counts nothing, overrides, and a
storage that is down failing open."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy import update

from bookwell.platform.db import Database
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.observability.logging import configure_logging
from bookwell.platform.ratelimit import Policy
from bookwell.platform.ratelimit import PolicyResolver
from bookwell.platform.ratelimit import RateLimiter
from bookwell.platform.ratelimit import SqlCounters
from bookwell.platform.ratelimit import build_rate_limiter
from bookwell.platform.ratelimit import clear_override
from bookwell.platform.ratelimit import list_overrides
from bookwell.platform.ratelimit import purge_expired
from bookwell.platform.ratelimit import set_override
from bookwell.platform.ratelimit.storage import rate_limit_counters
from bookwell.settings import RATE_LIMIT_POLICIES
from bookwell.settings import Settings
from tests.conftest import REDIS_URL
from tests.conftest import require_service
from tests.support.net import free_port
from tests.support.ratelimit import hit_many

# Windows start at a key's first hit, so a burst well inside a minute is in one window whatever the clock says.
READS = Policy("reads", 20, 60)


@dataclass(frozen=True)
class Backend:
    settings: Settings
    database: Database

    def limiter(self) -> RateLimiter:
        return build_rate_limiter(self.settings, self.database)


@pytest.fixture
def key() -> str:
    """A key of this test's own (the Redis backend deletes its counters afterwards)."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "redis"])
def backend(request: pytest.FixtureRequest, key: str) -> Iterator[Backend]:
    """Each test that takes it runs on the database storage (SQLite, PostgreSQL) and on Redis."""
    if request.param != "redis":
        database: Database = request.getfixturevalue(f"{request.param}_database")
        yield Backend(database.settings, database)
        return
    require_service("redis")
    database = request.getfixturevalue("sqlite_database")
    yield Backend(database.settings.model_copy(update={"rate_limit_storage_url": REDIS_URL}), database)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for stored in client.scan_iter(match=f"bookwell:ratelimit/*/{key}*"):
            client.delete(stored)
    finally:
        client.close()


def test_quota_plus_k_hits_from_threads_allow_exactly_the_quota(backend: Backend, key: str) -> None:
    limiter = backend.limiter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        decisions = list(pool.map(lambda _: limiter.hit((READS, key)), range(READS.quota + 12)))
    assert sum(d.allowed for d in decisions) == READS.quota
    assert all(d.retry_after_s is not None and d.retry_after_s >= 1 for d in decisions if not d.allowed)


def test_quota_plus_k_hits_from_processes_allow_exactly_the_quota(backend: Backend, key: str) -> None:
    processes, hits = 4, 8  # 32 hits against a quota of 20
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        allowed = pool.starmap(hit_many, [(backend.settings.model_dump(), READS, key, hits)] * processes)
    assert sum(allowed) == READS.quota
    assert backend.limiter().test((READS, key)).usages[0].remaining == 0


def test_usage_counts_down_and_a_refusal_says_when_to_retry(backend: Backend, key: str) -> None:
    limiter, policy = backend.limiter(), Policy("writes", 3, 60)
    first = limiter.hit((policy, key))
    assert first.allowed
    assert first.retry_after_s is None
    [usage] = first.usages
    assert usage.policy == policy
    assert usage.remaining == 2
    assert 1 <= usage.reset_s <= 60
    assert [limiter.hit((policy, key)).usages[0].remaining for _ in range(2)] == [1, 0]
    refused = limiter.hit((policy, key))
    assert not refused.allowed
    assert refused.usages[0].remaining == 0
    assert refused.retry_after_s == refused.usages[0].reset_s
    assert 1 <= refused.retry_after_s <= 60


def test_a_refused_hit_counts_against_every_policy_it_names(backend: Backend, key: str) -> None:
    limiter, tight, wide = backend.limiter(), Policy("writes", 1, 60), Policy("organization", 10, 60)
    assert limiter.hit((tight, key), (wide, key)).allowed
    refused = limiter.hit((tight, key), (wide, key))
    assert not refused.allowed
    assert [u.remaining for u in refused.usages] == [0, 8]
    assert refused.retry_after_s == refused.usages[0].reset_s


def test_keys_are_independent(backend: Backend, key: str) -> None:
    limiter, policy = backend.limiter(), Policy("writes", 1, 60)
    assert limiter.hit((policy, key)).allowed
    assert not limiter.hit((policy, key)).allowed
    assert limiter.hit((policy, f"{key}-other")).allowed
    assert limiter.hit((Policy("reads", 1, 60), key)).allowed  # another policy, another counter


def test_test_looks_without_counting(backend: Backend, key: str) -> None:
    limiter, policy = backend.limiter(), Policy("auth_failures", 2, 60)
    for _ in range(5):
        looked = limiter.test((policy, key))
        assert looked.allowed
        assert looked.usages[0].remaining == 2
        assert looked.usages[0].reset_s == 60  # no window runs yet: the first hit starts a whole one
    limiter.hit((policy, key))
    limiter.hit((policy, key))
    refused = limiter.test((policy, key))
    assert not refused.allowed
    assert refused.retry_after_s is not None
    assert refused.retry_after_s >= 1


def test_a_disabled_limiter_counts_nothing(backend: Backend, key: str) -> None:
    settings = backend.settings.model_copy(update={"rate_limit_enabled": False})
    limiter, policy = build_rate_limiter(settings, backend.database), Policy("writes", 1, 60)
    assert all(limiter.hit((policy, key)).allowed for _ in range(3))
    assert backend.limiter().test((policy, key)).usages[0].remaining == 1


def _unavailable_total() -> float:
    return REGISTRY.get_sample_value("bookwell_rate_limit_unavailable_total") or 0.0


def test_an_unreachable_redis_fails_open_counted_and_warned_once(
    sqlite_database: Database, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = sqlite_database.settings.model_copy(
        update={"rate_limit_storage_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    limiter = build_rate_limiter(closed, sqlite_database)
    before = _unavailable_total()
    configure_logging("INFO")  # the app's logging (structlog's loggers are cached: capture the output itself)
    capsys.readouterr()
    decisions = [limiter.hit((READS, key)) for _ in range(3)] + [limiter.test((READS, key))]
    assert all(d.allowed and d.usages == () and d.retry_after_s is None for d in decisions)
    assert _unavailable_total() == before + 4
    captured = capsys.readouterr()
    warned = [line for line in (captured.out + captured.err).splitlines() if "rate_limit_unavailable" in line]
    assert len(warned) == 1, warned
    assert "warning" in warned[0]


def test_rejections_are_counted_by_policy(backend: Backend, key: str) -> None:
    policy = Policy("availability", 1, 60)

    def rejected() -> float:
        return REGISTRY.get_sample_value("bookwell_rate_limit_rejections_total", {"policy": "availability"}) or 0.0

    before, limiter = rejected(), backend.limiter()
    for _ in range(3):
        limiter.hit((policy, key))
    assert rejected() == before + 2


def _default_limits(database: Database) -> Settings:
    """The test database's settings with the shipped rate limits (tests elsewhere run without any)."""
    names = [f"rate_limit_{policy}" for policy in RATE_LIMIT_POLICIES]
    return database.settings.model_copy(update={name: Settings.model_fields[name].default for name in names})


def test_overrides_replace_the_defaults_for_their_organization_only(database: Database) -> None:
    set_override(database, "org_a", Policy("reads", 5, 10))
    set_override(database, "org_a", Policy("reads", 7, 30))  # replaces the first
    set_override(database, "org_b", Policy("writes", 1, 1))
    assert [(o.organization_id, o.policy) for o in list_overrides(database)] == [
        ("org_a", Policy("reads", 7, 30)),
        ("org_b", Policy("writes", 1, 1)),
    ]
    resolver = PolicyResolver(database, _default_limits(database), cache_s=0)
    assert resolver.policies_for("org_a")["reads"] == Policy("reads", 7, 30)
    assert resolver.policies_for("org_a")["writes"] == Policy("writes", 120, 60)
    assert resolver.policies_for("org_c")["reads"] == Policy("reads", 600, 60)
    assert clear_override(database, "org_a", "reads")
    assert not clear_override(database, "org_a", "reads")
    assert resolver.policies_for("org_a")["reads"] == Policy("reads", 600, 60)
    with pytest.raises(ValueError, match="unknown rate-limit policy"):
        set_override(database, "org_a", Policy("everything", 1, 1))


def test_an_override_applies_once_the_cached_policies_lapse(database: Database) -> None:
    now = [100.0]
    resolver = PolicyResolver(database, _default_limits(database), cache_s=5, clock=lambda: now[0])
    assert resolver.policies_for("org_a")["reads"].quota == 600
    set_override(database, "org_a", Policy("reads", 3, 60))
    now[0] += 4.9
    assert resolver.policies_for("org_a")["reads"].quota == 600  # cached: no read per request
    now[0] += 0.2
    assert resolver.policies_for("org_a")["reads"].quota == 3


def test_an_ended_window_starts_again_in_the_same_statement_and_is_purged(database: Database) -> None:
    limiter, policy = RateLimiter(SqlCounters(database)), Policy("writes", 1, 60)
    assert limiter.hit((policy, "k")).allowed
    assert not limiter.hit((policy, "k")).allowed
    _end_every_window(database)
    assert limiter.test((policy, "k")).allowed  # an ended window counts nothing
    restarted = limiter.hit((policy, "k"))
    assert restarted.allowed
    assert restarted.usages[0].remaining == 0
    assert restarted.usages[0].reset_s > 1
    assert purge_expired(database, utcnow()) == 0  # the new window has not ended
    limiter.hit((policy, "other"))
    _end_every_window(database)
    assert purge_expired(database, utcnow()) == 2
    with database.engine.connect() as connection:
        assert connection.execute(select(rate_limit_counters.c.key)).all() == []


def test_a_look_on_sqlite_does_not_wait_for_the_write_lock(sqlite_database: Database) -> None:
    counters = SqlCounters(sqlite_database)
    counters.hit([("k", 60)])
    with sqlite_database.engine.connect() as writer:
        writer.begin()  # BEGIN IMMEDIATE (platform/db.py): the write lock, held until the block ends
        [count] = counters.look(["k"])
    assert count.used == 1


def test_a_hit_counts_each_key_once_and_nothing_is_nothing(database: Database) -> None:
    counters = SqlCounters(database)
    with pytest.raises(ValueError, match="each key once"):
        counters.hit([("k", 60), ("k", 60)])
    assert counters.hit([]) == []
    assert counters.look([]) == []
    assert counters.look(["k"])[0].used == 0


def _end_every_window(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(update(rate_limit_counters).values(expires_at=utcnow() - timedelta(seconds=1)))


def test_a_database_that_cannot_be_reached_fails_open_too(sqlite_database: Database) -> None:
    closed = sqlite_database.settings.model_copy(
        update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/none", "db_connect_timeout_s": 1}
    )
    unreachable = Database(closed)
    try:
        limiter = build_rate_limiter(closed, unreachable)
        before = _unavailable_total()
        decision = limiter.hit((READS, "credential:key_unreachable"))
        assert (decision.allowed, decision.usages) == (True, ())
        assert _unavailable_total() == before + 1
    finally:
        unreachable.dispose()
