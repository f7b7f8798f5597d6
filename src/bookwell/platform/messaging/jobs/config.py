"""Celery's settings from Bookwell's: queues, broker options per transport, logging left to Bookwell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import signals
from kombu.entity import Exchange
from kombu.entity import Queue

from bookwell.platform.messaging import embedded_broker
from bookwell.settings import Settings

DELIVER = "bookwell.deliver"


def periodic_queue(settings: Settings) -> str:
    """The queue of scheduled jobs: never stuck behind a backlog of deliveries on `job_queue`."""
    return settings.job_queue + ".periodic"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's settings for `settings.broker_url`."""
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": settings.readyz_timeout_s,
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": settings.job_queue,
        # No remote control: nothing here sends control commands, and its reply queue
        # (`celery@<host>.celery.pidbox`) is exclusive, so a second worker on the same host and
        # RabbitMQ vhost (two `bookwell worker`s, two deployments) would die declaring it.
        "worker_enable_remote_control": False,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "enable_utc": True,
        "timezone": "UTC",
    }
    scheme = settings.broker_url.split("://", 1)[0]
    if scheme == "filesystem":
        # The embedded broker (`embedded_broker`): kombu's filesystem transport made safe under
        # concurrent writers; the host is ignored, naming it avoids a warning.
        folder = Path(settings.broker_url.removeprefix("filesystem://") or settings.data_dir / "broker")
        config["broker_url"] = f"{embedded_broker.SCHEME}://localhost//"
        config["broker_transport_options"] = embedded_broker.transport_options(folder)
    elif scheme in {"amqp", "amqps", "pyamqp"}:
        # Quorum queues behind a topic exchange: what Celery's native delayed delivery needs, so a
        # retry's countdown waits in RabbitMQ, not in the worker's prefetch.
        exchange = Exchange(settings.job_queue, type="topic")
        config["task_queues"] = [
            Queue(name, exchange, routing_key=name, queue_arguments={"x-queue-type": "quorum"})
            for name in (settings.job_queue, periodic_queue(settings))
        ]
        config["task_default_exchange"] = settings.job_queue
        config["task_default_exchange_type"] = "topic"
        config["task_default_routing_key"] = settings.job_queue
    elif scheme in {"redis", "rediss"}:
        # An unacknowledged job (its worker died) returns to the queue after this long, so it must
        # outlast the longest a live worker keeps a job unacknowledged: a retry's countdown (at most
        # job_backoff_cap_s) plus a run (a saga step is bounded by its lease). ADR 0017.
        # kombu looks for such jobs every unacked_restore_interval x unacked_restore_throttle
        # seconds (100 s by its defaults): every 10 s here.
        config["broker_transport_options"] = {
            "visibility_timeout": redis_visibility_timeout_s(settings),
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        }
    return config


def redis_visibility_timeout_s(settings: Settings) -> float:
    """How long Redis waits for an acknowledgement before it gives a job to another worker: twice
    the longest a live worker holds one (countdown plus run), and at least 30 s."""
    return max(30.0, 2 * (settings.job_backoff_cap_s + settings.saga_lease_s))


@signals.setup_logging.connect
def _keep_our_logging(**_kwargs: Any) -> None:
    """Celery configures logging only when no one listens here: Bookwell's JSON logging stays in charge."""
