"""Quotas: the defaults from settings, an organization's overrides in `rate_limit_overrides`, and the
resolver that merges them, cached for a few seconds so no request reads the database for them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import PrimaryKeyConstraint
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bookwell.platform.db import Database
from bookwell.platform.db import metadata
from bookwell.settings import RATE_LIMIT_POLICIES
from bookwell.settings import Settings
from bookwell.settings import check_rate_limit
from bookwell.settings import parse_rate_limit

OVERRIDES_CACHE_S = 5.0
_CACHE_MAX_ORGANIZATIONS = 10_000

rate_limit_overrides = Table(
    "rate_limit_overrides",
    metadata,
    Column("organization_id", String(30), nullable=False),
    Column("policy", String(50), nullable=False),
    Column("quota", Integer, nullable=False),
    Column("window_s", Integer, nullable=False),
    PrimaryKeyConstraint("organization_id", "policy"),
)


@dataclass(frozen=True)
class Policy:
    """One quota: at most `quota` requests per key in each window of `window_s` seconds."""

    name: str  # one of RATE_LIMIT_POLICIES: "reads", "writes", "availability", "organization", "auth_failures"
    quota: int
    window_s: int

    def __post_init__(self) -> None:
        check_rate_limit(self.quota, self.window_s)

    @classmethod
    def parse(cls, name: str, value: str) -> Policy:
        """The policy `name` from `"QUOTA/WINDOW_S"` (e.g. `"600/60"`); ValueError when it is not that."""
        quota, window_s = parse_rate_limit(value)
        return cls(name, quota, window_s)


@dataclass(frozen=True)
class Override:
    """An organization's own quota for one policy, in place of the default."""

    organization_id: str
    policy: Policy


def default_policies(settings: Settings) -> dict[str, Policy]:
    """Every policy by name, as the settings (`BOOKWELL_RATE_LIMIT_<POLICY>`) define it."""
    return {name: Policy.parse(name, getattr(settings, f"rate_limit_{name}")) for name in RATE_LIMIT_POLICIES}


def set_override(database: Database, organization_id: str, policy: Policy) -> None:
    """Give `organization_id` its own quota for `policy.name` (replacing one it had)."""
    if policy.name not in RATE_LIMIT_POLICIES:
        raise ValueError(f"unknown rate-limit policy {policy.name!r}, not one of {', '.join(RATE_LIMIT_POLICIES)}")
    insert = pg_insert if database.dialect == "postgresql" else sqlite_insert
    statement = insert(rate_limit_overrides).values(
        organization_id=organization_id, policy=policy.name, quota=policy.quota, window_s=policy.window_s
    )
    statement = statement.on_conflict_do_update(
        index_elements=[rate_limit_overrides.c.organization_id, rate_limit_overrides.c.policy],
        set_={"quota": statement.excluded.quota, "window_s": statement.excluded.window_s},
    )
    with database.engine.begin() as connection:
        connection.execute(statement)


def clear_override(database: Database, organization_id: str, policy_name: str) -> bool:
    """Return `organization_id` to the default for `policy_name`; whether it had an override."""
    statement = delete(rate_limit_overrides).where(
        rate_limit_overrides.c.organization_id == organization_id, rate_limit_overrides.c.policy == policy_name
    )
    with database.engine.begin() as connection:
        return bool(connection.execute(statement).rowcount)


def list_overrides(database: Database, organization_id: str | None = None) -> list[Override]:
    """The overrides of `organization_id`, or of every organization, by organization then policy."""
    query = select(rate_limit_overrides).order_by(rate_limit_overrides.c.organization_id, rate_limit_overrides.c.policy)
    if organization_id is not None:
        query = query.where(rate_limit_overrides.c.organization_id == organization_id)
    with database.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [Override(row.organization_id, Policy(row.policy, row.quota, row.window_s)) for row in rows]


class PolicyResolver:
    """The policies that apply to an organization: the defaults, with its overrides in their place.

    Each organization's answer is kept `cache_s` seconds in this process, so a change made by the
    command line (another process) applies within that time, without a database read per request.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        cache_s: float = OVERRIDES_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.defaults = default_policies(settings)
        self.cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Mapping[str, Policy]]] = {}

    def policies_for(self, organization_id: str) -> Mapping[str, Policy]:
        """Every policy by name for `organization_id` (read from the database at most once per `cache_s`)."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(organization_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        overrides = {o.policy.name: o.policy for o in list_overrides(self.database, organization_id)}
        policies = MappingProxyType(self.defaults | overrides)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX_ORGANIZATIONS:
                self._cache.clear()  # bounded memory; each organization is read again once
            self._cache[organization_id] = (now + self.cache_s, policies)
        return policies
