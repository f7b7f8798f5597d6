"""What the tests and the smoke run leave on the shared servers: `snapshot FILE` before, `check FILE`
after. A Redis key, RabbitMQ queue or exchange, or NATS stream that is there after but was not
before, and carries a name the tests or the smoke run give what they make (`MARKERS`), is a
leftover and fails the check (issue 15: the tests remove what they create).

Only those names: the servers are shared, and Celery itself declares objects of fixed names that
every Celery app on the server shares and re-creates after a broker restart (`celery.pidbox`,
`celeryev`, the `celery_delayed_*` topology of delayed delivery); those are not the tests' to remove."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nats
import redis

REDIS_URL = os.environ.get("BOOKWELL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("BOOKWELL_TEST_NATS_URL", "nats://127.0.0.1:4222")
# The tests' queues, streams and subjects (tests/support/backbone.py), databases, the smoke run's
# queues, and rate-limit counters in Redis (which the tests delete rather than leave to expire).
MARKERS = ("bookwell-test", "BOOKWELL_TEST", "bookwell_test", "bookwell-smoke", "bookwell:ratelimit")


def _rabbitmq(kind: str) -> list[str]:
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        raise SystemExit("leftovers: rabbitmqctl is needed to list RabbitMQ's queues and exchanges")
    listed = subprocess.run(
        [rabbitmqctl, "-q", f"list_{kind}", "name", "--no-table-headers"], check=True, capture_output=True, text=True
    )
    return [f"rabbitmq:{kind[:-1]} {name}" for name in listed.stdout.split()]


async def _streams() -> list[str]:
    connection = await nats.connect(NATS_URL)
    try:
        return [f"nats:stream {info.config.name}" for info in await connection.jetstream().streams_info()]
    finally:
        await connection.close()


def inventory() -> list[str]:
    keys = [f"redis:key {key}" for key in redis.Redis.from_url(REDIS_URL, decode_responses=True).scan_iter()]
    return sorted([*keys, *_rabbitmq("queues"), *_rabbitmq("exchanges"), *asyncio.run(_streams())])


def main() -> None:
    command, file = sys.argv[1], Path(sys.argv[2])
    if command == "snapshot":
        file.write_text(json.dumps(inventory()), encoding="utf-8")
        return
    before = set(json.loads(file.read_text(encoding="utf-8")))
    left = [item for item in inventory() if item not in before and any(marker in item for marker in MARKERS)]
    if left:
        raise SystemExit("leftovers: the tests left these on the shared servers:\n  " + "\n  ".join(left))
    print("leftovers: none (Redis, RabbitMQ and NATS hold nothing the tests made)")


if __name__ == "__main__":
    main()
