"""The authenticator other layers use: it trusts a key it verified for `trust_s` (one lookup, not
one per request), never trusts a wrong token, and forgets a revoked key at once, including one whose
lookup was under way while it was revoked."""

from __future__ import annotations

import pytest

from bookwell.identity import facade
from bookwell.identity import service
from bookwell.identity.domain import SCOPES
from bookwell.identity.facade import KeyAuthenticator
from bookwell.platform.kernel.principal import Principal
from tests.unit.fakes import FakeIdentityUnitOfWork


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counted:
    """A unit-of-work factory that counts the units of work asked for (one per database lookup)."""

    def __init__(self, uow: FakeIdentityUnitOfWork) -> None:
        self.uow = uow
        self.calls = 0

    def __call__(self, readonly: bool = False) -> FakeIdentityUnitOfWork:
        self.calls += 1
        return self.uow


def _setup(trust_s: float = 1.0) -> tuple[KeyAuthenticator, Counted, Clock, str, str]:
    uow = FakeIdentityUnitOfWork()
    organization, _ = service.create_organization(uow=uow, name="Acme")
    owner = Principal(organization_id=organization.id, credential_id="key_first", scopes=SCOPES)
    key, token = service.create_api_key(uow=uow, granted_by=owner, name="ci", scopes=frozenset({"events:read"}))
    factory, clock = Counted(uow), Clock()
    return KeyAuthenticator(factory, trust_s=trust_s, clock=clock), factory, clock, token, key.id


def test_a_verified_key_is_trusted_for_trust_s_then_looked_up_again() -> None:
    authenticate, lookups, clock, token, key_id = _setup()
    first = authenticate(token)
    assert first is not None
    assert first.credential_id == key_id
    asked = lookups.calls
    clock.now += 0.9
    assert authenticate(token) == first
    assert lookups.calls == asked
    clock.now += 0.2
    assert authenticate(token) == first
    assert lookups.calls > asked


def test_a_wrong_token_is_looked_up_every_time() -> None:
    authenticate, lookups, _, token, _ = _setup()
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert authenticate(wrong) is None
    assert authenticate(wrong) is None
    assert lookups.calls == 2


def test_a_forgotten_key_is_looked_up_at_once_and_a_revoked_one_refused() -> None:
    authenticate, lookups, _, token, key_id = _setup()
    principal = authenticate(token)
    assert principal is not None
    service.revoke_api_key(uow=lookups.uow, organization_id=principal.organization_id, api_key_id=key_id)
    authenticate.forget(key_id)
    assert authenticate(token) is None


def test_a_lookup_that_overlapped_a_revocation_is_not_trusted() -> None:
    authenticate, lookups, clock, token, _ = _setup()

    def revoked_meanwhile(readonly: bool = False) -> FakeIdentityUnitOfWork:
        if lookups.calls == 0:
            authenticate.forget("key_elsewhere")  # another request revoked some key while this one looked
        return lookups(readonly)

    authenticate = KeyAuthenticator(revoked_meanwhile, trust_s=1.0, clock=clock)
    assert authenticate(token) is not None
    asked = lookups.calls
    assert authenticate(token) is not None
    assert lookups.calls > asked  # the first answer was not trusted


def test_no_trust_at_all_with_trust_s_zero() -> None:
    authenticate, lookups, _, token, _ = _setup(trust_s=0)
    assert authenticate(token) is not None
    asked = lookups.calls
    assert authenticate(token) is not None
    assert lookups.calls > asked


def test_when_full_the_lapsed_keys_make_room_and_a_live_one_is_never_pushed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(facade, "MAX_TRUSTED", 2)
    uow = FakeIdentityUnitOfWork()
    organization, _ = service.create_organization(uow=uow, name="Acme")
    owner = Principal(organization_id=organization.id, credential_id="key_first", scopes=SCOPES)
    tokens = [
        service.create_api_key(uow=uow, granted_by=owner, name=f"k{n}", scopes=frozenset({"events:read"}))[1]
        for n in range(4)
    ]
    lookups, clock = Counted(uow), Clock()
    authenticate = KeyAuthenticator(lookups, trust_s=1.0, clock=clock)

    def looked_up(token: str) -> bool:
        before = lookups.calls
        assert authenticate(token) is not None
        return lookups.calls > before

    assert looked_up(tokens[0])
    assert looked_up(tokens[1])
    assert looked_up(tokens[2])  # full of live keys: answered, not kept
    assert not looked_up(tokens[0])
    assert looked_up(tokens[2])
    clock.now += 1.5  # both kept keys lapse
    assert looked_up(tokens[3])  # the lapsed ones make room
    assert not looked_up(tokens[3])
