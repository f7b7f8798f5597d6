"""Identity use cases: one function per command or query, each owning its transaction."""

from __future__ import annotations

from bookwell.identity.domain import MANAGE_KEYS
from bookwell.identity.domain import SCOPES
from bookwell.identity.domain import ApiKey
from bookwell.identity.domain import ApiKeyNotFound
from bookwell.identity.domain import Authentication
from bookwell.identity.domain import LastManagingKey
from bookwell.identity.domain import Organization
from bookwell.identity.domain import OrganizationNotFound
from bookwell.identity.domain import create_organization as new_organization
from bookwell.identity.domain import issue_api_key
from bookwell.identity.domain import parse_token
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.kernel.principal import Principal


def create_organization(*, uow: IdentityUnitOfWork, name: str) -> tuple[Organization, str]:
    """A new organization and its first API key, holding every scope; returns the key's token."""
    now = utcnow()
    organization = new_organization(name, now)
    key, token = issue_api_key(
        organization_id=organization.id, name="initial key", scopes=SCOPES, now=now, granted_by=None
    )
    with uow:
        uow.organizations.add(organization)
        uow.api_keys.add(key)
        uow.commit()
    return organization, token


def get_organization(*, uow: IdentityUnitOfWork, organization_id: str) -> Organization:
    """The organization with this id."""
    with uow:
        organization = uow.organizations.get(organization_id)
    if organization is None:
        raise OrganizationNotFound("No such organization.")
    return organization


def create_api_key(
    *, uow: IdentityUnitOfWork, granted_by: Principal, name: str, scopes: frozenset[str]
) -> tuple[ApiKey, str]:
    """A new key in the caller's organization, with no scope the caller lacks; the token is
    returned once and never stored."""
    key, token = issue_api_key(
        organization_id=granted_by.organization_id, name=name, scopes=scopes, now=utcnow(), granted_by=granted_by
    )
    with uow:
        uow.api_keys.add(key)
        uow.commit()
    return key, token


def list_api_keys(*, uow: IdentityUnitOfWork, organization_id: str, page: PageRequest) -> Page[ApiKey]:
    """The organization's keys, newest first."""
    with uow:
        return uow.api_keys.list(organization_id, page)


def revoke_api_key(*, uow: IdentityUnitOfWork, organization_id: str, api_key_id: str) -> ApiKey:
    """Revoke a key; refuses to revoke the organization's last active key that can manage keys.

    Keys can be made over the API only by a key holding `api_keys:manage`; revoking the last
    one would lock the organization out of its own credentials.
    """
    with uow:
        uow.organizations.lock(organization_id)
        key = uow.api_keys.get(organization_id, api_key_id)
        if key is None:
            raise ApiKeyNotFound("No such API key.")
        if (
            key.active
            and MANAGE_KEYS in key.scopes
            and uow.api_keys.count_active_with_scope(organization_id, MANAGE_KEYS) <= 1
        ):
            raise LastManagingKey("This is the organization's last active key with api_keys:manage.")
        key.revoke(utcnow())
        uow.api_keys.save_usage(key)
        uow.commit()
    return key


def authenticate(*, uow: IdentityUnitOfWork, token: str) -> Authentication | None:
    """Who holds this token, or None if it is malformed, unknown or revoked; reads only."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    prefix, secret = parsed
    with uow:
        key = uow.api_keys.by_prefix(prefix)
    if key is None or not key.verify(secret):
        return None
    principal = Principal(organization_id=key.organization_id, credential_id=key.id, scopes=key.scopes)
    return Authentication(principal=principal, usage_due=key.touch(utcnow()))


def record_key_use(*, uow: IdentityUnitOfWork, organization_id: str, api_key_id: str) -> None:
    """Move the key's `last_used_at` forward (at most once per resolution; repeats are no-ops)."""
    with uow:
        key = uow.api_keys.get(organization_id, api_key_id)
        if key is not None and key.touch(utcnow()):
            uow.api_keys.save_usage(key)
            uow.commit()
