"""Who is calling: the organization a credential belongs to and what it may do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    organization_id: str
    credential_id: str
    scopes: frozenset[str]
