"""Organizations and API keys over HTTP: secrets shown once, scopes enforced centrally, revocation immediate."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import RESOURCE
from tests.api.conftest import Api
from tests.api.conftest import Org
from tests.api.conftest import problem


def new_key(api: Api, scopes: list[str], name: str = "partner") -> dict[str, Any]:
    response = api.post("/v1/api-keys", json={"name": name, "scopes": scopes})
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_organization_is_the_callers(api: Api, org: Org) -> None:
    body = api.get("/v1/organization").get_json()
    assert body["id"] == org.id
    assert body["name"] == "Acme"


def test_a_new_key_shows_its_secret_once_and_works(api: Api) -> None:
    created = new_key(api, ["resources:read"])
    assert created["secret"].startswith(f"bw_{created['prefix']}_")
    assert created["scopes"] == ["resources:read"]
    listed = api.get("/v1/api-keys").get_json()["data"]
    assert next(k["id"] for k in listed) == created["id"]
    assert all("secret" not in k and "secret_hash" not in k for k in listed)
    assert api.as_(created["secret"]).get("/v1/resources").status_code == 200


def test_key_validation(api: Api) -> None:
    problem(api.post("/v1/api-keys", json={"name": "x", "scopes": ["root"]}), 422, "validation_failed")
    problem(api.post("/v1/api-keys", json={"name": "x", "scopes": []}), 422, "validation_failed")
    problem(api.post("/v1/api-keys", json={"name": " ", "scopes": ["events:read"]}), 422, "validation_failed")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer bw_0000000000000000_" + "A" * 43, "Bearer nonsense", "bearer  "],
)
def test_missing_or_bad_credentials_are_401_with_a_challenge(anonymous: Api, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = anonymous.get("/v1/resources", headers=headers)
    problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_secret_for_a_real_prefix_is_401(api: Api, org: Org) -> None:
    prefix = org.token.split("_")[1]
    forged = f"bw_{prefix}_" + "A" * 43
    problem(api.as_(forged).get("/v1/organization"), 401, "unauthorized")


def test_a_key_without_the_scope_is_403(api: Api) -> None:
    reader = api.as_(new_key(api, ["resources:read"])["secret"])
    assert reader.get("/v1/resources").status_code == 200
    response = reader.post("/v1/resources", json=RESOURCE)
    problem(response, 403, "insufficient_scope")
    assert 'scope="resources:write"' in response.headers["WWW-Authenticate"]
    problem(reader.get("/v1/api-keys"), 403, "insufficient_scope")
    assert api.get("/v1/resources").get_json()["data"] == []


def test_revocation_takes_effect_on_the_next_request(api: Api) -> None:
    key = new_key(api, ["resources:read"])
    holder = api.as_(key["secret"])
    assert holder.get("/v1/resources").status_code == 200
    assert api.delete(f"/v1/api-keys/{key['id']}").status_code == 204
    problem(holder.get("/v1/resources"), 401, "unauthorized")
    listed = {k["id"]: k for k in api.get("/v1/api-keys").get_json()["data"]}
    assert listed[key["id"]]["revoked_at"] is not None
    assert api.delete(f"/v1/api-keys/{key['id']}").status_code == 204  # revoking again is harmless


def test_last_used_at_is_recorded(api: Api) -> None:
    key = new_key(api, ["events:read"])
    assert key["last_used_at"] is None
    api.as_(key["secret"]).get("/v1/organization")
    listed = {k["id"]: k for k in api.get("/v1/api-keys").get_json()["data"]}
    assert listed[key["id"]]["last_used_at"] is not None


def test_the_last_key_that_manages_keys_cannot_be_revoked(api: Api, org: Org) -> None:
    first = api.get("/v1/api-keys").get_json()["data"][0]
    problem(api.delete(f"/v1/api-keys/{first['id']}"), 409, "last_managing_key")
    second = new_key(api, ["api_keys:manage"])
    assert api.delete(f"/v1/api-keys/{first['id']}").status_code == 204
    problem(api.get("/v1/organization"), 401, "unauthorized")
    problem(api.as_(second["secret"]).delete(f"/v1/api-keys/{second['id']}"), 409, "last_managing_key")


def test_another_organizations_key_is_404(api: Api, make_org: Any) -> None:
    other = api.as_(make_org("Other").token)
    theirs = new_key(other, ["resources:read"])
    problem(api.delete(f"/v1/api-keys/{theirs['id']}"), 404, "api_key_not_found")
    problem(api.delete("/v1/api-keys/key_00000000000000000000000000"), 404, "api_key_not_found")
    assert theirs["id"] not in [k["id"] for k in api.get("/v1/api-keys").get_json()["data"]]
    assert other.as_(theirs["secret"]).get("/v1/resources").status_code == 200


@pytest.mark.parametrize("wanted", [["bookings:write"], ["payments:refund"], ["api_keys:manage", "webhooks:manage"]])
def test_a_key_cannot_mint_a_key_with_a_scope_it_lacks(api: Api, wanted: list[str]) -> None:
    manager = new_key(api, ["api_keys:manage"], name="manager")
    refused = api.as_(manager["secret"]).post("/v1/api-keys", json={"name": "escalated", "scopes": wanted})
    body = problem(refused, 403, "insufficient_scope")
    assert body["errors"][0]["pointer"] == "/scopes"
    assert "escalated" not in [k["name"] for k in api.get("/v1/api-keys").get_json()["data"]], "no key was made"
    same = api.as_(manager["secret"]).post("/v1/api-keys", json={"name": "peer", "scopes": ["api_keys:manage"]})
    assert same.status_code == 201
