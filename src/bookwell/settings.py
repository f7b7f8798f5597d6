"""Typed settings from `BOOKWELL_*` environment variables, a `.env` file and a secrets folder
(pydantic-settings); refuses default secrets and unknown variables outside development."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator
from pydantic_settings import BaseSettings
from pydantic_settings import EnvSettingsSource
from pydantic_settings import PydanticBaseSettingsSource
from pydantic_settings import SettingsConfigDict
from pydantic_settings import SettingsError
from pydantic_settings.sources.utils import parse_env_vars

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


MAX_DELAY_S = 30 * 86400.0


def parse_delays(value: str) -> tuple[float, ...]:
    """`5,300,1800`: seconds, each more than 0 and at most 30 days; at least one and at most 30."""
    try:
        delays = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"{value!r} is not a comma-separated list of seconds") from None
    if not 1 <= len(delays) <= 30 or any(not 0 < delay <= MAX_DELAY_S for delay in delays):  # NaN and inf too
        raise ValueError("between 1 and 30 delays, each more than 0 seconds and at most 30 days")
    return delays


def default_data_dir() -> Path:
    """`var/` in the source checkout Bookwell runs from; installed as a package,
    `$XDG_DATA_HOME/bookwell` (by default `~/.local/share/bookwell`)."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "bookwell").is_dir():
        return checkout / "var"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "bookwell"


def _absolute_folder(folder: str | Path) -> Path:
    return Path(folder).expanduser().resolve()


ENV_FILE = ".env"  # in the folder a process starts in, as every tool that reads one does
# The variables `from_env` reads, while it builds the settings; unset, `Settings(...)` built in code
# (tests, benchmarks) holds what it is given and the defaults, whatever the environment says.
_VARIABLES: ContextVar[Mapping[str, str] | None] = ContextVar("bookwell_settings_variables", default=None)


class _GivenVariables(EnvSettingsSource):
    """The environment source reading the mapping `from_env` was given (or `os.environ`)."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]) -> None:
        self._variables = variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._variables, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    """Everything the process reads from its environment, validated once at start-up.

    Read by `from_env`, from these sources, strongest first: explicit overrides, `BOOKWELL_*`
    environment variables, files in `BOOKWELL_SECRETS_DIR` named after the variable
    (`BOOKWELL_SECRET_KEY`, as Docker and Kubernetes mount secrets), the `.env` file of the current
    folder, then the defaults. Built directly, `Settings(...)` takes only what it is given and the defaults.
    """

    # Unknown `BOOKWELL_*` names in the sources are found by `from_env`, which says which setting each
    # probably meant; an unknown name given in code is refused by `_only_settings`. An empty variable
    # counts as unset (`BOOKWELL_DATABASE_URL=` from an unset compose variable must not hide the
    # secret file's value).
    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_prefix="BOOKWELL_", env_ignore_empty=True, env_file_encoding="utf-8"
    )

    env: Literal["development", "test", "production"] = Field(
        default="development",
        description="Outside `development`, a default secret key and unknown settings are refused.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="The embedded defaults' folder: the SQLite database and the job broker's files.",
    )
    secrets_dir: Path | None = Field(
        default=None,
        description="A folder of files named after settings (e.g. `BOOKWELL_SECRET_KEY`), each holding its value.",
    )
    database_url: str = Field(
        default="",
        description="`sqlite:///PATH` (a file) or `postgresql://USER:PASSWORD@HOST:PORT/DB`; empty:"
        " `sqlite:///DATA_DIR/bookwell.db`, the embedded default.",
    )
    secret_key: str = Field(
        default=DEV_SECRET_KEY,
        description="Signs pagination cursors; 32+ random characters, required outside `development`.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="The lowest level logged."
    )
    log_format: Literal["json", "console"] = Field(
        default="json",
        description="`json` lines for machines; `console`, aligned text for people (`make run` sets it).",
    )
    http_bind: str = Field(default="127.0.0.1:8000", description="Where the API listens (`HOST:PORT`), for Gunicorn.")
    trace_sample_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="The share of new traces recorded when tracing is on (an `OTEL_EXPORTER_OTLP_ENDPOINT` is"
        " set); a request that arrives in a sampled trace is always recorded (parent-based).",
    )
    relay_metrics_bind: str = Field(
        default="127.0.0.1:9101", description="Where `bookwell relay` serves `/metrics` (`HOST:PORT`); empty: nowhere."
    )
    worker_metrics_bind: str = Field(
        default="127.0.0.1:9102", description="Where `bookwell worker` serves `/metrics` (`HOST:PORT`); empty: nowhere."
    )
    scheduler_metrics_bind: str = Field(
        default="127.0.0.1:9103",
        description="Where `bookwell scheduler` serves `/metrics`, with the backlogs read from the database"
        " (`HOST:PORT`); empty: nowhere.",
    )
    web_workers: int = Field(default=2, ge=1, le=64, description="Gunicorn worker processes of the API.")
    web_threads: int = Field(default=4, ge=1, le=64, description="Threads per Gunicorn worker.")
    db_pool_size: int = Field(default=5, ge=1, le=100, description="PostgreSQL connections kept per process.")
    db_max_overflow: int = Field(default=5, ge=0, le=100, description="Extra PostgreSQL connections under load.")
    db_pool_timeout_s: float = Field(
        default=5.0, gt=0, description="How long a request waits for a free connection before a 503."
    )
    db_connect_timeout_s: int = Field(default=3, ge=1, description="How long connecting to PostgreSQL may take.")
    db_statement_timeout_ms: int = Field(default=5000, ge=0, description="PostgreSQL's statement_timeout (0: none).")
    db_lock_timeout_ms: int = Field(
        default=3000, ge=1, description="How long a row lock is waited for before a 409 `resource_busy`."
    )
    sqlite_busy_timeout_ms: int = Field(default=3000, ge=1, description="How long SQLite waits for its write lock.")
    readyz_timeout_s: float = Field(default=2.0, gt=0, description="How long `/readyz` waits for each dependency.")
    broker_url: str = Field(
        default="",
        description="The job broker: `filesystem://FOLDER` (no server), `redis://...` or `amqp://...` (RabbitMQ,"
        " quorum queues); empty: `filesystem://DATA_DIR/broker`, the embedded default.",
    )
    job_queue: str = Field(
        default="bookwell",
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="The jobs' queue: one per deployment on a shared broker (scheduled jobs use `<name>.periodic`).",
    )
    worker_concurrency: int = Field(default=4, ge=1, le=64, description="Jobs one `bookwell worker` runs at once.")
    job_max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts of a job before it is dead-lettered.")
    job_backoff_base_s: float = Field(
        default=1.0, gt=0, description="The first retry's window (full jitter, doubling)."
    )
    job_backoff_cap_s: float = Field(default=300.0, gt=0, description="The longest retry window.")
    stall_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A pending delivery this long past due is re-driven if its job is lost (ADR 0017, 0028), and"
        " logged as lag; so is an unsent outbox row this old.",
    )
    redrive_every_s: float = Field(default=15.0, gt=0, description="How often the scheduler looks for lost deliveries.")
    holds_expire_every_s: float = Field(default=30.0, gt=0, description="How often lapsed holds are marked expired.")
    relay_batch_size: int = Field(default=100, ge=1, le=1000, description="Events the relay delivers per pass.")
    relay_poll_interval_s: float = Field(
        default=0.5, gt=0, le=1.0, description="How often the relay looks for events (SQLite; PostgreSQL is notified)."
    )
    nats_url: str | None = Field(
        default=None, description="NATS with JetStream (e.g. `nats://127.0.0.1:4222`): events are published there too."
    )
    nats_stream: str = Field(
        default="BOOKWELL_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The JetStream stream's name."
    )
    nats_subject_prefix: str = Field(
        default="bookwell.events",
        pattern=r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$",
        description="Subjects are `<prefix>.<organization>.<event type>`.",
    )
    nats_duplicate_window_s: float = Field(
        default=3600.0, gt=0, description="JetStream drops a re-published event within this window."
    )
    payment_provider: Literal["fake", "http"] = Field(
        default="fake",
        description="`fake` (in process, the embedded default) or `http` (a provider's API at `payment_provider_url`).",
    )
    payment_provider_url: str | None = Field(
        default=None, description="The provider's base URL, e.g. `bookwell provider-sim`'s `http://127.0.0.1:8700`."
    )
    payment_timeout_s: float = Field(default=2.0, gt=0, le=30, description="One provider call's timeout.")
    payment_retry_attempts: int = Field(default=3, ge=1, le=10, description="Tries of one provider call.")
    payment_breaker_fail_max: int = Field(
        default=5, ge=1, le=100, description="Failures in a row that open the provider's circuit breaker."
    )
    payment_breaker_reset_s: float = Field(default=10.0, gt=0, description="How long the breaker stays open.")
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated networks (CIDR) webhook endpoints may reach although they are loopback,"
        " private or link-local, over `http` too (tests, private deployments); in `development` loopback always may.",
    )
    webhook_connect_timeout_s: float = Field(default=3.0, gt=0, le=30, description="Connecting to a receiver.")
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60, description="A receiver's answer, once connected.")
    webhook_secret_grace_s: float = Field(
        default=86400.0, ge=0, description="How long a rotated-out signing secret keeps signing beside the new one."
    )
    webhook_disable_after_s: float = Field(
        default=432000.0, gt=0, description="An endpoint whose every attempt failed this long is disabled (5 days)."
    )
    webhook_retry_schedule_s: str = Field(
        default="5,300,1800,7200,18000,36000,50400,72000,86400",
        description="Seconds from a failed webhook attempt to the next (each ±10 %); after the last, the delivery"
        " is dead. The default spans about three days.",
    )
    webhook_dispatch_every_s: float = Field(
        default=1.0, gt=0, description="How often the scheduler looks for webhook deliveries that are due."
    )
    webhook_endpoint_concurrency: int = Field(
        default=2, ge=1, le=32, description="Attempts to one endpoint in flight at once (one while it is failing)."
    )
    saga_sweep_every_s: float = Field(default=5.0, gt=0, description="How often waiting saga steps are looked for.")
    saga_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a worker owns a saga step (longer than a step can take); a dead worker's saga is"
        " picked up again after it.",
    )
    handler_modules: str = Field(
        default="",
        description="Comma-separated modules whose `register(subscriptions, database)` adds event handlers.",
    )
    credential_trust_s: float = Field(
        default=1.0,
        ge=0,
        le=1.0,
        description="How long a process trusts an API key it verified before asking the database again; a "
        "key revoked in another process stops working within this (0: ask on every request).",
    )
    rate_limit_enabled: bool = Field(default=True, description="Rate limits on (ADR 0022, 0024).")
    rate_limit_storage_url: str = Field(
        default="", description="Empty: counters in the database (every process shares them); or `redis://...`."
    )
    rate_limit_reads: str = Field(default="600/60", description="`QUOTA/WINDOW_S` of reads per API key.")
    rate_limit_writes: str = Field(default="120/60", description="`QUOTA/WINDOW_S` of writes per API key.")
    rate_limit_availability: str = Field(
        default="60/60", description="`QUOTA/WINDOW_S` of availability queries per API key."
    )
    rate_limit_organization: str = Field(
        default="6000/60", description="`QUOTA/WINDOW_S` of requests per organization, all its keys together."
    )
    rate_limit_auth_failures: str = Field(
        default="20/60", description="`QUOTA/WINDOW_S` of failed authentications per client address."
    )
    cache_url: str = Field(
        default="",
        description="Cached resource and availability reads (ADR 0035): `redis://...` (shared by every host), "
        "`local` (each process's memory, writes announced through a file in the data folder: every process "
        "must run on this host) or `off`. Empty: `local` on SQLite, `off` on PostgreSQL.",
    )
    cache_ttl_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="The longest a cached read is kept. A write ends it at once; this bounds only a write whose "
        "announcement was lost (Redis unreachable just then).",
    )
    proxy_hops: int = Field(
        default=0,
        ge=0,
        le=5,
        description="Proxies in front that append to `X-Forwarded-For` (0: the header is ignored).",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, folder: Path) -> Path:
        return _absolute_folder(folder)

    @model_validator(mode="before")
    @classmethod
    def _embedded_defaults(cls, data: Any) -> Any:
        # Absolute, so a command run from another folder finds the same database and broker.
        if not isinstance(data, dict):
            return data
        if misnamed := sorted(set(data) - set(cls.model_fields)):
            raise ValueError(f"not settings: {', '.join(misnamed)}")
        folder = _absolute_folder(data.get("data_dir") or default_data_dir())
        return data | {
            "database_url": data.get("database_url") or f"sqlite:///{folder / 'bookwell.db'}",
            "broker_url": data.get("broker_url") or f"filesystem://{folder / 'broker'}",
        }

    @field_validator("relay_metrics_bind", "worker_metrics_bind", "scheduler_metrics_bind")
    @classmethod
    def _host_and_port(cls, bind: str) -> str:
        if not bind:
            return bind
        if not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):\d{1,5}", bind) or int(bind.rpartition(":")[2]) > 65535:
            raise ValueError("must be HOST:PORT (an IPv6 host in brackets), or empty")
        return bind

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
    def _webhook_settings_parse(self) -> Settings:
        try:
            parse_delays(self.webhook_retry_schedule_s)
        except ValueError as error:
            raise ValueError(f"BOOKWELL_WEBHOOK_RETRY_SCHEDULE_S: {error}") from None
        for network in filter(None, (part.strip() for part in self.webhook_allowed_networks.split(","))):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"BOOKWELL_WEBHOOK_ALLOWED_NETWORKS: {network!r} is not a network (CIDR)") from None
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
    def _cache_url_parses(self) -> Settings:
        if self.cache_url not in {"", "local", "off"} and urlsplit(self.cache_url).scheme not in {"redis", "rediss"}:
            raise ValueError("BOOKWELL_CACHE_URL must be empty, `local`, `off` or a redis:// URL")
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env != "development" and (self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32):
            raise ValueError(f"BOOKWELL_SECRET_KEY must be a random value of 32+ characters when env is {self.env}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        variables = _VARIABLES.get()
        if variables is None:
            return (init_settings,)
        # Mounted secrets outrank a `.env` file, which may have been left in an image by mistake.
        return init_settings, _GivenVariables(settings_cls, variables), file_secret_settings, dotenv_settings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the settings from their sources (`environ`, when given, replaces the process's
        environment and its `.env`); explicit overrides win.

        A `BOOKWELL_*` variable or secret file that names no setting (a misspelling would otherwise
        be ignored in silence) is refused outside development, with the setting it probably meant,
        and warned about once on stderr in development; when another setting fails too, the refusal
        names both. `BOOKWELL_TEST_*` and `BOOKWELL_BENCH_*` belong to the tests and benchmarks, and
        `BOOKWELL_SERVICE_*` and `BOOKWELL_PORT*` are what Kubernetes and Docker links define for a
        service named `bookwell`.
        """
        variables = os.environ if environ is None else environ
        env_file = Path(ENV_FILE) if environ is None and Path(ENV_FILE).is_file() else None
        try:  # a line without `=` has no value, but its name is checked like the others
            from_file = {k: v or "" for k, v in dotenv_values(env_file, encoding="utf-8").items()} if env_file else {}
        except (UnicodeDecodeError, OSError) as error:
            raise SettingsProblem(f"{ENV_FILE} cannot be read as UTF-8 text: {error}") from error
        secrets_dir = variables.get("BOOKWELL_SECRETS_DIR") or from_file.get("BOOKWELL_SECRETS_DIR") or None
        secret_files: dict[str, str] = {}
        if secrets_dir is not None:
            if not Path(secrets_dir).is_dir():
                raise SettingsProblem(f"BOOKWELL_SECRETS_DIR: {secrets_dir} is not a folder")
            secret_files = {path.name.upper(): "" for path in Path(secrets_dir).iterdir() if path.is_file()}
        unknown = [
            *unknown_variables(variables),
            *unknown_variables(from_file, where=f" (in {ENV_FILE})"),
            *unknown_variables(secret_files, where=f" (a file in {secrets_dir})"),
        ]
        token = _VARIABLES.set(variables)
        try:
            settings = cls(_env_file=env_file, _secrets_dir=secrets_dir, **{"secrets_dir": secrets_dir, **overrides})
        except ValidationError as error:
            if unknown:  # the misspelling is likely why a setting is missing or wrong: say both
                raise SettingsProblem("; ".join([*unknown, _first_problem(error)])) from error
            raise
        except SettingsError as error:  # a source that cannot be read, e.g. a secret file not in UTF-8
            raise SettingsProblem(str(error)) from error
        finally:
            _VARIABLES.reset(token)
        if unknown and settings.env != "development":
            raise SettingsProblem("; ".join(unknown))
        for complaint in unknown:
            if complaint not in _WARNED:
                _WARNED.add(complaint)
                sys.stderr.write(f"bookwell: warning: {complaint}\n")
        return settings


class SettingsProblem(ValueError):
    """Settings that cannot be used as given, beyond what the model checks: `BOOKWELL_*` variables
    that name no setting (outside development), a secrets folder that is not one, an unreadable
    `.env`."""


_WARNED: set[str] = set()
_NOT_SETTINGS = ("BOOKWELL_TEST_", "BOOKWELL_BENCH_", "BOOKWELL_SERVICE_", "BOOKWELL_PORT")


def unknown_variables(environ: Mapping[str, str], where: str = "") -> list[str]:
    """One line per `BOOKWELL_*` variable that names no setting, with the closest one that does."""
    names = [name.upper() for name in Settings.model_fields]
    complaints = []
    for key in sorted(name.upper() for name in environ):  # names are matched regardless of case
        if (
            key.startswith("BOOKWELL_")
            and key.removeprefix("BOOKWELL_") not in names
            and not key.startswith(_NOT_SETTINGS)
        ):
            # Compared without the shared prefix, which would make every name look alike.
            close = difflib.get_close_matches(key.removeprefix("BOOKWELL_"), names, n=1, cutoff=0.75)
            complaints.append(
                f"{key}{where} is not a setting" + (f" (did you mean BOOKWELL_{close[0]}?)" if close else "")
            )
    return complaints


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = "_".join(map(str, first["loc"])).upper()
    return f"BOOKWELL_{where}: {first['msg']}" if where else str(first["msg"])
