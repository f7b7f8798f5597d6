"""Identity's HTTP views: the contract's operations in, service calls, representations out."""

from __future__ import annotations

from flask import Response
from flask import jsonify

from bookwell.identity import service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.identity.ports import TrustedKeys
from bookwell.identity.presenters import v1
from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import Dependency
from bookwell.platform.http.contract.binding import Views
from bookwell.platform.http.pagination import page_request
from bookwell.platform.http.pagination import page_response
from bookwell.platform.http.pipeline.idempotency import shown_once

views = Views()
uow = Dependency[IdentityUnitOfWork]("identity.uow")
trusted_keys = Dependency[TrustedKeys]("identity.trusted_keys")


@views.operation("getOrganization")
def get_organization(call: Call) -> Response:
    organization = service.get_organization(uow=uow(readonly=True), organization_id=call.organization_id)
    return jsonify(v1.organization(organization))


@views.operation("createApiKey")
def create_api_key(call: Call) -> tuple[Response, int, dict[str, str]]:
    key, token = service.create_api_key(
        uow=uow(),
        granted_by=call.caller,
        name=call.body.name,
        scopes=frozenset(scope.value for scope in call.body.scopes),
    )
    return (
        shown_once(jsonify(v1.api_key(key) | {"secret": token}), "secret"),
        201,
        {"Location": f"/v1/api-keys/{key.id}"},
    )


@views.operation("listApiKeys")
def list_api_keys(call: Call) -> Response:
    scope = call.operation.operation_id
    page = service.list_api_keys(
        uow=uow(readonly=True),
        organization_id=call.organization_id,
        page=page_request(scope, call.query.limit, call.query.cursor),
    )
    return page_response(scope, page, present=v1.api_key, key=lambda key: key.id)


@views.operation("revokeApiKey")
def revoke_api_key(call: Call) -> tuple[str, int]:
    key = service.revoke_api_key(
        uow=uow(),
        organization_id=call.organization_id,
        api_key_id=call.path["api_key_id"],
    )
    trusted_keys().forget(key.id)
    return "", 204
