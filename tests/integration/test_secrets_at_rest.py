"""No credential rests anywhere: after a tour (a key minted with an Idempotency-Key and replayed, a
resource, a paid booking confirmed by its saga, a cancellation refunded, every event delivered),
no table holds a minted secret, and neither do the logs. Both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.db import metadata
from tests.api.conftest import Api
from tests.integration.conftest import System


def secret_of(token: str) -> str:
    """The part of `bw_<prefix>_<secret>` that proves the key (the prefix is public)."""
    return token.split("_", 2)[2]  # the secret may hold "_" itself


def test_no_table_and_no_log_line_holds_a_minted_secret(system: System, capsys: pytest.CaptureFixture[str]) -> None:
    container = system.container
    _, first = identity_service.create_organization(uow=container.unit_of_work(IdentityUnitOfWork)(), name="Tour")
    api = Api(system.api.client, first)
    minted = api.post(
        "/v1/api-keys",
        json={"name": "partner", "scopes": ["resources:write", "resources:read", "bookings:write", "bookings:read"]},
        headers={"Idempotency-Key": "mint-1"},
    )
    assert minted.status_code == 201, minted.get_data(as_text=True)
    token = minted.get_json()["secret"]
    replayed = api.post(
        "/v1/api-keys",
        json={"name": "partner", "scopes": ["resources:write", "resources:read", "bookings:write", "bookings:read"]},
        headers={"Idempotency-Key": "mint-1"},
    )
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json()["secret"] is None, "a replay shows no secret"
    assert replayed.get_json()["id"] == minted.get_json()["id"]

    partner = System(Api(system.api.client, token), container)
    booking = partner.book("tok_ok")
    partner.drive()
    assert partner.booking(booking["id"])["status"] == "confirmed"
    cancelled = partner.api.post(
        f"/v1/bookings/{booking['id']}/cancel", json={"reason": "rain"}, headers={"Idempotency-Key": "cancel-1"}
    )
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    partner.drive()

    secrets = {secret_of(token), secret_of(first)}
    with container.database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                stored = " ".join(
                    value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value) for value in row
                )
                assert not any(secret in stored for secret in secrets), f"a secret rests in {table.name}"
    logged = capsys.readouterr()
    assert logged.out or logged.err, "the tour logged something to look through"
    assert not any(secret in logged.out + logged.err for secret in secrets), "a secret was logged"
