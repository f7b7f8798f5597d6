"""Organizations and API keys: who may call, for which organization, with which scopes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from bookwell.platform.kernel.errors import Conflict
from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import Forbidden
from bookwell.platform.kernel.errors import InvalidInput
from bookwell.platform.kernel.errors import NotFound
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.kernel.principal import Principal

SCOPES = frozenset(
    {
        "resources:read",
        "resources:write",
        "bookings:read",
        "bookings:write",
        "payments:read",
        "payments:refund",
        "events:read",
        "webhooks:manage",
        "api_keys:manage",
    }
)
MANAGE_KEYS = "api_keys:manage"
# last_used_at is a hint, not an audit trail: writing it at most once a minute keeps
# authentication from turning every request into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_TOKEN = re.compile(r"^bw_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class OrganizationNotFound(NotFound):
    code = "organization_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class ScopeEscalation(Forbidden):
    code = "insufficient_scope"
    title = "Forbidden"


class LastManagingKey(Conflict):
    code = "last_managing_key"
    title = "Last managing key"


@dataclass
class Organization:
    """A tenant: every other object belongs to exactly one."""

    id: str
    name: str
    created_at: datetime


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret. The secret has 256 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """`(prefix, secret)` of a well-formed token, else None."""
    match = _TOKEN.match(token)
    return (match.group(1), match.group(2)) if match else None


@dataclass
class ApiKey:
    """A credential: found by its public prefix, proven by a secret of which only the hash is kept."""

    id: str
    organization_id: str
    name: str
    scopes: frozenset[str]
    prefix: str
    secret_hash: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the key still authenticates."""
        return self.revoked_at is None

    def verify(self, secret: str) -> bool:
        """Whether `secret` is this key's, compared in constant time."""
        return self.active and hmac.compare_digest(hash_secret(secret), self.secret_hash)

    def touch(self, now: datetime) -> bool:
        """Record a use; True when `last_used_at` moved (at most once per resolution)."""
        if self.last_used_at is not None and now - self.last_used_at < LAST_USED_RESOLUTION:
            return False
        self.last_used_at = now
        return True

    def revoke(self, now: datetime) -> None:
        """Stop the key from working; revoking twice keeps the first time."""
        if self.revoked_at is None:
            self.revoked_at = now


@dataclass(frozen=True)
class Authentication:
    """A verified credential, and whether its `last_used_at` is due to be written."""

    principal: Principal
    usage_due: bool


def _clean_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput(
            "A name cannot be blank.",
            errors=(FieldError("/name", "must not be blank"),),
        )
    return cleaned


def create_organization(name: str, now: datetime) -> Organization:
    """A new organization."""
    return Organization(id=new_id("org"), name=_clean_name(name), created_at=now)


def issue_api_key(
    *, organization_id: str, name: str, scopes: frozenset[str], now: datetime, granted_by: Principal | None
) -> tuple[ApiKey, str]:
    """A new key and its token, `bw_<prefix>_<secret>`; the token exists only in this return value.

    `granted_by` is the credential asking (None only for an organization's first key, made by an
    operator): it may grant only scopes it holds itself (the service makes the key in its organization)."""
    unknown = scopes - SCOPES
    if unknown or not scopes:
        raise InvalidInput(
            "Unknown or missing scopes.",
            errors=(FieldError("/scopes", "unknown or empty"),),
        )
    if granted_by is not None:
        beyond = scopes - granted_by.scopes
        if beyond:
            raise ScopeEscalation(
                f"A key can be given only scopes its maker holds; this credential lacks {', '.join(sorted(beyond))}.",
                errors=(FieldError("/scopes", f"beyond the credential's own: {', '.join(sorted(beyond))}"),),
            )
    prefix, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        organization_id=organization_id,
        name=_clean_name(name),
        scopes=scopes,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        created_at=now,
    )
    return key, f"bw_{prefix}_{secret}"
