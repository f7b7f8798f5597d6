"""A revoked API key through real Gunicorn workers (2 processes x 4 threads), each trusting the keys
it verified for `credential_trust_s` (1 s): revoked where no worker hears of it (the revoking worker
forgets at once, `tests/api/test_identity.py`), the key still stops working in every worker once
that second has passed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from tests.conftest import UNLIMITED_ENV
from tests.support.gunicorn import gunicorn

TRUST_S = 1.0
REQUESTS = 64  # 16 at a time, after both workers are up: each is likely to verify the key


def _statuses(port: int, token: str) -> list[int]:
    def get(_: int) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"http://127.0.0.1:{port}/v1/resources", headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(get, range(REQUESTS)))


def test_a_revoked_key_stops_working_in_every_worker_within_the_trust_window(
    sqlite_database: Database, tmp_path: Path
) -> None:
    uow = SqlIdentityUnitOfWork
    _, admin = identity_service.create_organization(uow=uow(sqlite_database), name="Revoking")
    found = identity_service.authenticate(uow=uow(sqlite_database, readonly=True), token=admin)
    assert found is not None
    key, token = identity_service.create_api_key(
        uow=uow(sqlite_database), granted_by=found.principal, name="leaked", scopes=frozenset({"resources:read"})
    )
    workers = {"BOOKWELL_WEB_WORKERS": "2", "BOOKWELL_WEB_THREADS": "4", "BOOKWELL_LOG_LEVEL": "INFO"}
    trust = {"BOOKWELL_CREDENTIAL_TRUST_S": str(TRUST_S)}
    with gunicorn(sqlite_database, tmp_path, every_worker=True, **workers, **UNLIMITED_ENV, **trust) as port:
        assert set(_statuses(port, token)) == {200}  # trusted now, wherever it was verified
        identity_service.revoke_api_key(
            uow=uow(sqlite_database), organization_id=key.organization_id, api_key_id=key.id
        )
        revoked_at = time.monotonic()
        time.sleep(max(0.0, revoked_at + TRUST_S - time.monotonic()) + 0.05)
        assert set(_statuses(port, token)) == {401}
