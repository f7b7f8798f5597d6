"""What other parts of Bookwell may use of identity: turning a bearer token into a principal."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from bookwell.identity import service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.kernel.principal import Principal

MAX_TRUSTED = 10_000  # tokens trusted at once per process; more are asked for again


class KeyAuthenticator:
    """The function the HTTP layer calls with each bearer token, trusting a key it verified less than
    `trust_s` ago without asking the database again (ADR 0030).

    A revocation made in this process takes effect at once (`forget`); one made in another process
    within `trust_s`. Only a token's SHA-256 is kept, never the token, and only tokens that verified:
    a wrong one is asked for every time (the guess limit counts those). The lookup reads only; a
    write happens at most once a minute per key, to move `last_used_at`, so authenticating does not
    take SQLite's write lock on every request.
    """

    def __init__(
        self,
        uow_factory: Callable[..., IdentityUnitOfWork],
        *,
        trust_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow_factory = uow_factory
        self._trust_s = trust_s
        self._clock = clock
        self._trusted: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()
        self._forgotten = 0  # how many times `forget` ran: a lookup that saw fewer may be stale

    def __call__(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        trusted = self._trusted.get(digest)
        if trusted is not None and self._clock() < trusted[1]:
            return trusted[0]
        forgotten, looked_at = self._forgotten, self._clock()
        found = service.authenticate(uow=self._uow_factory(readonly=True), token=token)
        if found is None:
            return None
        if found.usage_due:
            service.record_key_use(
                uow=self._uow_factory(),
                organization_id=found.principal.organization_id,
                api_key_id=found.principal.credential_id,
            )
        if self._trust_s > 0:
            self._trust(digest, found.principal, until=looked_at + self._trust_s, forgotten=forgotten)
        return found.principal

    def forget(self, credential_id: str) -> None:
        """Stop trusting the key `credential_id` in this process (it was just revoked)."""
        with self._lock:
            self._forgotten += 1
            self._trusted = {
                digest: entry for digest, entry in self._trusted.items() if entry[0].credential_id != credential_id
            }

    def _trust(self, digest: bytes, principal: Principal, *, until: float, forgotten: int) -> None:
        with self._lock:
            if forgotten != self._forgotten:
                return  # a key was revoked while this one was looked up: the answer may predate it
            if len(self._trusted) >= MAX_TRUSTED:
                now = self._clock()
                self._trusted = {digest: entry for digest, entry in self._trusted.items() if entry[1] > now}
                if len(self._trusted) >= MAX_TRUSTED:
                    return
            self._trusted[digest] = (principal, until)
