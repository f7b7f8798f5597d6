"""Request-path CPU: milliseconds of process CPU per request through the whole pipeline, in process
(Flask's test client, no server, no network), for an authenticated `GET /v1/resources/{id}` and a
`POST /v1/bookings` on a free resource, on a SQLite file, with the rate-limit counters

- `off`: rate limits disabled (the pipeline's other stages only: the baseline);
- `database`: the embedded default, counted in the application's database;
- `redis`: counted in Redis (`--redis-url`).

Variants run interleaved, round by round, each on a fresh database; the figure is the median of
`--rounds`. CPU time, not wall time: steadier on a shared machine. Quotas are set far above what
the run sends, so every request is counted and none refused.
Run: `python bench/request_path.py` (Redis at 127.0.0.1:6379 for the `redis` variant).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from alembic import command

from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.cli import alembic_config
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.settings import RATE_LIMIT_POLICIES
from bookwell.settings import Settings

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
RESOURCE = {
    "name": "Court",
    "timezone": "UTC",
    "slot_minutes": 5,
    "max_slots": 4,
    "capacity": 1000,
    "price_per_slot": {"amount": 0, "currency": "EUR"},
    "opening_hours": {day: [["00:00", "24:00"]] for day in DAYS},
}


def _settings(folder: Path, variant: str, redis_url: str) -> Settings:
    limits: dict[str, Any] = {f"rate_limit_{policy}": "100000000/3600" for policy in RATE_LIMIT_POLICIES}
    limits["rate_limit_enabled"] = variant != "off"
    if variant == "redis":
        limits["rate_limit_storage_url"] = redis_url
    return Settings(
        env="test",
        database_url=f"sqlite:///{folder / 'bench.db'}",
        secret_key="bench-secret-key-" + "x" * 32,
        broker_url="memory://",
        log_level="WARNING",
        **limits,
    )


def _requests(settings: Settings) -> tuple[Callable[[], None], Callable[[], None]]:
    command.upgrade(alembic_config(settings), "head")
    container = bootstrap(settings)
    client = create_app(settings, container=container).test_client()
    logging.getLogger().setLevel(logging.WARNING)
    _, token = identity_service.create_organization(uow=container.unit_of_work(IdentityUnitOfWork)(), name="Bench")
    auth = {"Authorization": f"Bearer {token}"}
    created = client.post("/v1/resources", json=RESOURCE, headers=auth)
    assert created.status_code == 201, created.get_data(as_text=True)
    resource_id = created.get_json()["id"]
    keys = itertools.count()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)

    def get() -> None:
        assert client.get(f"/v1/resources/{resource_id}", headers=auth).status_code == 200

    def post() -> None:
        n = next(keys)
        begins = start + timedelta(minutes=5 * (n % 5000))
        body = {
            "resource_id": resource_id,
            "start": begins.isoformat().replace("+00:00", "Z"),
            "end": (begins + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
            "customer": {"name": "Ada", "email": "ada@example.com"},
        }
        answer = client.post("/v1/bookings", json=body, headers=auth | {"Idempotency-Key": f"bench-{n}"})
        assert answer.status_code == 201, answer.get_data(as_text=True)

    return get, post


def _cpu_ms(run: Callable[[], None], requests: int) -> float:
    for _ in range(20):  # warm caches and pools
        run()
    started = time.process_time()
    for _ in range(requests):
        run()
    return (time.process_time() - started) / requests * 1000


def _forget_counters(redis_url: str) -> None:
    """Remove the counters the `redis` variant made (they would expire in an hour anyway)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match="bookwell:ratelimit/*"):
            client.delete(key)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    variants = ("off", "database", "redis")
    figures: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for variant in variants:
            with tempfile.TemporaryDirectory() as folder:
                get, post = _requests(_settings(Path(folder), variant, args.redis_url))
                figures.setdefault((variant, "get"), []).append(_cpu_ms(get, args.requests))
                figures.setdefault((variant, "post"), []).append(_cpu_ms(post, args.requests))
    _forget_counters(args.redis_url)
    print(f"CPU ms per request, median of {args.rounds} interleaved rounds of {args.requests} requests")
    for path in ("get", "post"):
        baseline = statistics.median(figures[("off", path)])
        for variant in variants:
            median = statistics.median(figures[(variant, path)])
            print(f"{path:4} rate limits {variant:9} {median:7.3f} ms  x{median / baseline:.2f}")


if __name__ == "__main__":
    main()
