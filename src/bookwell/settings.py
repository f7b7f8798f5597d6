"""Typed settings from `BOOKWELL_*` environment variables; refuses default secrets outside development."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator

DEV_SECRET_KEY = "dev-only-secret-key-never-use-in-production"  # noqa: S105 - refused outside development
RATE_LIMIT_POLICIES = ("reads", "writes", "availability", "organization", "auth_failures")
MAX_RATE_LIMIT_QUOTA = 1_000_000_000
MAX_RATE_LIMIT_WINDOW_S = 86_400
_RATE_LIMIT = re.compile(r"([0-9]{1,10})/([0-9]{1,6})")


def parse_rate_limit(value: str) -> tuple[int, int]:
    """`"QUOTA/WINDOW_S"` (e.g. `"600/60"`) as `(quota, window_s)`; refuses anything else with a ValueError."""
    match = _RATE_LIMIT.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not QUOTA/WINDOW_S in whole numbers, e.g. 600/60")
    quota, window_s = int(match[1]), int(match[2])
    check_rate_limit(quota, window_s)
    return quota, window_s


def check_rate_limit(quota: int, window_s: int) -> None:
    """Refuse (ValueError) a quota outside 1..10^9 or a window outside 1 s..a day."""
    if not 1 <= quota <= MAX_RATE_LIMIT_QUOTA or not 1 <= window_s <= MAX_RATE_LIMIT_WINDOW_S:
        raise ValueError(
            f"the quota must be 1 to {MAX_RATE_LIMIT_QUOTA} and the window 1 to {MAX_RATE_LIMIT_WINDOW_S} s,"
            f" not {quota}/{window_s}"
        )


class Settings(BaseModel):
    """Everything the process reads from its environment, validated once at start-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///var/bookwell.db"
    secret_key: str = DEV_SECRET_KEY
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=5, ge=0, le=100)
    db_pool_timeout_s: float = Field(default=5.0, gt=0)
    db_connect_timeout_s: int = Field(default=3, ge=1)
    db_statement_timeout_ms: int = Field(default=5000, ge=0)
    db_lock_timeout_ms: int = Field(default=3000, ge=1)
    sqlite_busy_timeout_ms: int = Field(default=3000, ge=1)
    readyz_timeout_s: float = Field(default=2.0, gt=0)
    # Jobs (Celery). `filesystem://FOLDER` needs no server (the embedded default); `redis://...`
    # and `amqp://...` (RabbitMQ, quorum queues) are the production brokers.
    broker_url: str = "filesystem://var/broker"
    job_queue: str = Field(
        default="bookwell", pattern=r"^[A-Za-z0-9_.-]{1,100}$"
    )  # one per deployment on a shared broker
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    job_max_attempts: int = Field(default=8, ge=1, le=100)
    job_backoff_base_s: float = Field(default=1.0, gt=0)
    job_backoff_cap_s: float = Field(default=300.0, gt=0)
    # Scheduler: a pending delivery this long past due was lost and is re-driven; an unsent outbox
    # row this old means the relay is behind, and is logged as a warning.
    stall_after_s: float = Field(default=60.0, gt=0)
    redrive_every_s: float = Field(default=15.0, gt=0)
    holds_expire_every_s: float = Field(default=30.0, gt=0)
    # Relay and the external event stream (NATS JetStream; off unless a URL is set).
    relay_batch_size: int = Field(default=100, ge=1, le=1000)
    relay_poll_interval_s: float = Field(default=0.5, gt=0, le=1.0)
    nats_url: str | None = None
    nats_stream: str = Field(default="BOOKWELL_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_subject_prefix: str = Field(default="bookwell.events", pattern=r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
    nats_duplicate_window_s: float = Field(default=3600.0, gt=0)
    # Payments: the provider (`fake`, in process, the embedded default; `http`, a provider's API at
    # `payment_provider_url`, e.g. `bookwell provider-sim`), its timeouts, retries and breaker.
    payment_provider: Literal["fake", "http"] = "fake"
    payment_provider_url: str | None = None
    payment_timeout_s: float = Field(default=2.0, gt=0, le=30)
    payment_retry_attempts: int = Field(default=3, ge=1, le=10)
    payment_breaker_fail_max: int = Field(default=5, ge=1, le=100)
    payment_breaker_reset_s: float = Field(default=10.0, gt=0)
    saga_sweep_every_s: float = Field(default=5.0, gt=0)
    # How long a worker owns a saga step: longer than a step can take (payment_timeout_s x attempts,
    # plus backoff); a dead worker's saga is picked up again this long after it died.
    saga_lease_s: float = Field(default=60.0, gt=0)
    # Modules whose `register(subscriptions, database)` adds internal event handlers beyond Bookwell's own
    # (a deployment's extensions; the async tests' recording handler).
    handler_modules: str = ""
    # Rate limits (ADR 0022), each "QUOTA/WINDOW_S": requests a key may make per fixed window. The
    # counters are in Redis when `rate_limit_storage_url` is a redis:// URL, else (empty, the
    # embedded default) in the application's database, shared by every worker and process.
    rate_limit_enabled: bool = True
    rate_limit_storage_url: str = ""
    rate_limit_reads: str = "600/60"
    rate_limit_writes: str = "120/60"
    rate_limit_availability: str = "60/60"
    rate_limit_organization: str = "6000/60"
    rate_limit_auth_failures: str = "20/60"
    # How many proxies in front append to X-Forwarded-For: the client's address (failed
    # authentication is limited per address, ADR 0024) is taken that many hops back; 0 ignores the header.
    proxy_hops: int = Field(default=0, ge=0, le=5)

    @model_validator(mode="after")
    def _lease_outlasts_a_step(self) -> Settings:
        # A charge step's longest run: every attempt timing out, plus the retry pauses (capped at 2 s).
        longest = self.payment_timeout_s * self.payment_retry_attempts + 2.0 * (self.payment_retry_attempts - 1)
        if self.saga_lease_s <= longest:
            raise ValueError(f"BOOKWELL_SAGA_LEASE_S must exceed {longest:g} s, the longest a payment call can take")
        return self

    @model_validator(mode="after")
    def _provider_needs_url(self) -> Settings:
        if self.payment_provider == "http" and not self.payment_provider_url:
            raise ValueError("BOOKWELL_PAYMENT_PROVIDER_URL is required when BOOKWELL_PAYMENT_PROVIDER is http")
        return self

    @model_validator(mode="after")
    def _rate_limits_parse(self) -> Settings:
        for policy in RATE_LIMIT_POLICIES:
            try:
                parse_rate_limit(getattr(self, f"rate_limit_{policy}"))
            except ValueError as error:
                raise ValueError(f"BOOKWELL_RATE_LIMIT_{policy.upper()}: {error}") from None
        if self.rate_limit_storage_url and urlsplit(self.rate_limit_storage_url).scheme not in {"redis", "rediss"}:
            raise ValueError("BOOKWELL_RATE_LIMIT_STORAGE_URL must be empty (the database) or a redis:// URL")
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env != "development" and (self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32):
            raise ValueError(f"BOOKWELL_SECRET_KEY must be a random value of 32+ characters when env is {self.env}")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read `BOOKWELL_<FIELD>` variables (e.g. `BOOKWELL_DATABASE_URL`); explicit overrides win."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            key = f"BOOKWELL_{name.upper()}"
            if key in environ:
                values[name] = environ[key]
        values.update(overrides)
        return cls.model_validate(values)
