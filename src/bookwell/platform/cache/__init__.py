"""Cached reads (ADR 0035): `cache_for(settings)` builds the `ReadCache` the settings name."""

from __future__ import annotations

from bookwell.platform.cache.core import Cache
from bookwell.platform.cache.core import Uncached
from bookwell.platform.cache.local import LocalStore
from bookwell.platform.cache.redis import RedisStore
from bookwell.platform.kernel.cache import ReadCache
from bookwell.platform.redis_client import request_path_client
from bookwell.settings import Settings

GENERATIONS_FILE = "cache-generations"


def cache_for(settings: Settings) -> ReadCache:
    """Redis for `redis://` URLs, this host's store for `local`, none for `off`; empty means `local`
    on SQLite (one host by construction) and `off` on PostgreSQL (whose processes may span hosts)."""
    kind = settings.cache_url or ("local" if settings.database_url.startswith("sqlite") else "off")
    if kind == "off":
        return Uncached()
    if kind == "local":
        return Cache(LocalStore(settings.data_dir / GENERATIONS_FILE), max_ttl_s=settings.cache_ttl_s)
    return Cache(RedisStore(request_path_client(kind)), max_ttl_s=settings.cache_ttl_s)
