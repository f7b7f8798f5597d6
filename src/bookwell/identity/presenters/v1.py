"""Identity's objects in the shapes of API v1 (`src/bookwell/contract/openapi/v1.yaml`)."""

from __future__ import annotations

from typing import Any

from bookwell.identity.domain import ApiKey
from bookwell.identity.domain import Organization
from bookwell.platform.kernel.clock import rfc3339


def organization(found: Organization) -> dict[str, Any]:
    """`Organization`."""
    return {"id": found.id, "name": found.name, "created_at": rfc3339(found.created_at)}


def api_key(key: ApiKey) -> dict[str, Any]:
    """`ApiKey`: never the secret (a new key's answer adds it once, `CreatedApiKey`)."""
    return {
        "id": key.id,
        "name": key.name,
        "scopes": sorted(key.scopes),
        "prefix": key.prefix,
        "created_at": rfc3339(key.created_at),
        "last_used_at": rfc3339(key.last_used_at) if key.last_used_at else None,
        "revoked_at": rfc3339(key.revoked_at) if key.revoked_at else None,
    }
