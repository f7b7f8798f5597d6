"""The bounded contexts that make up Bookwell, in the order they register (docs/design/architecture.md).

Each names a package with a `registration` module: `register(registry)` wires the context in, and
`commands` are its `bookwell` subcommands. Adding a context is one line here. A context that looks
up what another provides (`Registry.lookup`) comes after it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

CONTEXTS: Sequence[str] = (
    "bookwell.identity",
    "bookwell.catalog",
    "bookwell.payments",
    "bookwell.booking",  # after payments: the booking saga charges through the Payments facade
    "bookwell.notifications",
)


def registrations(contexts: Sequence[str] | None = None) -> list[ModuleType]:
    """Each context's `registration` module, in order (of `CONTEXTS` unless told others)."""
    chosen = CONTEXTS if contexts is None else contexts
    return [importlib.import_module(f"{package}.registration") for package in chosen]
