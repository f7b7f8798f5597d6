"""Identity use cases on an in-memory unit of work."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bookwell.identity import service
from bookwell.identity.domain import SCOPES
from bookwell.identity.domain import ApiKeyNotFound
from bookwell.identity.domain import LastManagingKey
from bookwell.identity.domain import ScopeEscalation
from bookwell.identity.domain import hash_secret
from bookwell.identity.domain import parse_token
from bookwell.platform.kernel.errors import InvalidInput
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.kernel.principal import Principal
from tests.unit.fakes import FakeIdentityUnitOfWork


def owner(organization_id: str) -> Principal:
    """A caller with every scope in `organization_id`, as an organization's first key is."""
    return Principal(organization_id=organization_id, credential_id="key_first", scopes=SCOPES)


def test_an_organization_comes_with_one_key_holding_every_scope() -> None:
    uow = FakeIdentityUnitOfWork()
    organization, token = service.create_organization(uow=uow, name="  Acme  ")
    assert organization.name == "Acme"
    found = service.authenticate(uow=uow, token=token)
    assert found is not None
    assert found.principal.organization_id == organization.id
    assert found.principal.scopes == SCOPES


def test_only_the_hash_of_the_secret_is_stored() -> None:
    uow = FakeIdentityUnitOfWork()
    _, token = service.create_organization(uow=uow, name="Acme")
    prefix, secret = parse_token(token) or ("", "")
    [stored] = uow.state["api_keys"].values()
    assert stored.prefix == prefix
    assert stored.secret_hash == hash_secret(secret)
    assert secret not in repr(uow.state)


@pytest.mark.parametrize("mangle", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: t + "x", str.upper])
def test_a_wrong_or_malformed_token_authenticates_no_one(mangle: object) -> None:
    uow = FakeIdentityUnitOfWork()
    _, token = service.create_organization(uow=uow, name="Acme")
    assert service.authenticate(uow=uow, token=mangle(token)) is None  # type: ignore[operator]


def test_a_revoked_key_stops_authenticating() -> None:
    uow = FakeIdentityUnitOfWork()
    organization, admin = service.create_organization(uow=uow, name="Acme")
    key, token = service.create_api_key(
        uow=uow, granted_by=owner(organization.id), name="ci", scopes=frozenset({"events:read"})
    )
    service.revoke_api_key(uow=uow, organization_id=organization.id, api_key_id=key.id)
    assert service.authenticate(uow=uow, token=token) is None
    assert service.authenticate(uow=uow, token=admin) is not None


def test_authentication_only_reads_and_says_when_last_used_at_is_due() -> None:
    uow = FakeIdentityUnitOfWork()
    organization, token = service.create_organization(uow=uow, name="Acme")
    commits = uow.commits
    found = service.authenticate(uow=uow, token=token)
    assert found is not None
    assert found.usage_due
    assert uow.commits == commits
    service.record_key_use(uow=uow, organization_id=organization.id, api_key_id=found.principal.credential_id)
    assert uow.commits == commits + 1
    again = service.authenticate(uow=uow, token=token)
    assert again is not None
    assert not again.usage_due
    service.record_key_use(uow=uow, organization_id=organization.id, api_key_id=found.principal.credential_id)
    assert uow.commits == commits + 1  # within the minute: nothing to write
    [stored] = uow.state["api_keys"].values()
    stored.last_used_at -= timedelta(minutes=2)
    later = service.authenticate(uow=uow, token=token)
    assert later is not None
    assert later.usage_due


def test_the_last_managing_key_is_kept_and_the_check_is_serialised() -> None:
    uow = FakeIdentityUnitOfWork()
    organization, _ = service.create_organization(uow=uow, name="Acme")
    [first] = service.list_api_keys(uow=uow, organization_id=organization.id, page=PageRequest(10)).items
    with pytest.raises(LastManagingKey):
        service.revoke_api_key(uow=uow, organization_id=organization.id, api_key_id=first.id)
    assert uow.organizations.locked == (organization.id,)


def test_keys_are_scoped_to_their_organization() -> None:
    uow = FakeIdentityUnitOfWork()
    acme, _ = service.create_organization(uow=uow, name="Acme")
    other, _ = service.create_organization(uow=uow, name="Other")
    key, _ = service.create_api_key(uow=uow, granted_by=owner(acme.id), name="k", scopes=frozenset({"events:read"}))
    with pytest.raises(ApiKeyNotFound):
        service.revoke_api_key(uow=uow, organization_id=other.id, api_key_id=key.id)


def test_unknown_scopes_are_refused() -> None:
    uow = FakeIdentityUnitOfWork()
    organization, _ = service.create_organization(uow=uow, name="Acme")
    with pytest.raises(InvalidInput):
        service.create_api_key(uow=uow, granted_by=owner(organization.id), name="k", scopes=frozenset({"admin"}))


def test_a_key_can_grant_only_scopes_it_holds() -> None:
    uow = FakeIdentityUnitOfWork()
    organization, _ = service.create_organization(uow=uow, name="Acme")
    manager = Principal(organization_id=organization.id, credential_id="key_m", scopes=frozenset({"api_keys:manage"}))
    keys_before = len(uow.state["api_keys"])
    for wanted in ({"bookings:write"}, {"payments:refund", "api_keys:manage"}, SCOPES):
        with pytest.raises(ScopeEscalation) as refused:
            service.create_api_key(uow=uow, granted_by=manager, name="k", scopes=frozenset(wanted))
        assert refused.value.code == "insufficient_scope"
    assert len(uow.state["api_keys"]) == keys_before, "a refused key is not stored"
    key, _ = service.create_api_key(uow=uow, granted_by=manager, name="k", scopes=frozenset({"api_keys:manage"}))
    assert key.scopes == {"api_keys:manage"}
    assert key.organization_id == organization.id
