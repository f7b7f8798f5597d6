"""The composition root: one `Registry` for the settings, the platform's jobs, then every context
registering itself (`contexts.py`); tests hand in their own database, or their own contexts."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from bookwell.contexts import registrations
from bookwell.platform import maintenance
from bookwell.platform.db import Database
from bookwell.platform.registry import Registry
from bookwell.settings import Settings


def bootstrap(
    settings: Settings, *, database: Database | None = None, contexts: Sequence[str] | None = None
) -> Registry:
    """Wire Bookwell for `settings`; pass `database` to share one engine (tests do), `contexts` to
    register others than `CONTEXTS`."""
    registry = Registry(settings, database or Database(settings))
    for module in filter(None, (name.strip() for name in settings.handler_modules.split(","))):
        importlib.import_module(module).register(registry.subscriptions, registry.database)
    maintenance.register(registry)
    for registration in registrations(contexts):
        registration.register(registry)
    return registry
