"""Catalog's HTTP views: the contract's operations in, service calls, representations out."""

from __future__ import annotations

import json
import math
from functools import partial

from flask import Response
from flask import jsonify

from bookwell.catalog import service
from bookwell.catalog.ports import CatalogUnitOfWork
from bookwell.catalog.presenters import v1
from bookwell.platform.http.conditional import etag
from bookwell.platform.http.conditional import not_modified
from bookwell.platform.http.conditional import required_versions
from bookwell.platform.http.conditional import with_etag
from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import Dependency
from bookwell.platform.http.contract.binding import Views
from bookwell.platform.http.pagination import page_request
from bookwell.platform.http.pagination import page_response
from bookwell.platform.kernel.cache import Fill
from bookwell.platform.kernel.cache import ReadCache
from bookwell.platform.kernel.cache import Scope

views = Views()
uow = Dependency[CatalogUnitOfWork]("catalog.uow")
cache = Dependency[ReadCache]("catalog.cache")


@views.operation("createResource")
def create_resource(call: Call) -> tuple[Response, int, dict[str, str]]:
    resource = service.create_resource(
        uow=uow(),
        organization_id=call.organization_id,
        fields=call.body.model_dump(exclude_unset=True),
    )
    response = with_etag(jsonify(v1.resource(resource)), resource.version)
    return response, 201, {"Location": f"/v1/resources/{resource.id}"}


@views.operation("listResources")
def list_resources(call: Call) -> Response:
    scope = call.operation.operation_id
    page = service.list_resources(
        uow=uow(readonly=True),
        organization_id=call.organization_id,
        page=page_request(scope, call.query.limit, call.query.cursor),
        active=call.query.active,
    )
    return page_response(scope, page, present=v1.resource, key=lambda r: r.id)


@views.operation("getResource")
def get_resource(call: Call) -> Response:
    organization_id, resource_id = call.organization_id, call.path["resource_id"]
    load = partial(_resource, organization_id, resource_id)
    version, body = cache().read(Scope(organization_id, resource_id), "resource.v1", load).split(b"\n", 1)
    shown = Response(body, mimetype="application/json")
    return not_modified(etag(int(version))) or with_etag(shown, int(version))


def _resource(organization_id: str, resource_id: str) -> Fill:
    """The resource's version and representation, kept until it changes (ADR 0035)."""
    resource = service.get_resource(uow=uow(readonly=True), organization_id=organization_id, resource_id=resource_id)
    body = json.dumps(v1.resource(resource), separators=(",", ":")).encode()
    return Fill(b"%d\n" % resource.version + body, ttl_s=math.inf)


@views.operation("updateResource")
def update_resource(call: Call) -> Response:
    resource = service.update_resource(
        uow=uow(),
        organization_id=call.organization_id,
        resource_id=call.path["resource_id"],
        accepted_versions=required_versions(),
        changes=call.body.model_dump(exclude_unset=True),
    )
    return with_etag(jsonify(v1.resource(resource)), resource.version)


@views.operation("deleteResource")
def delete_resource(call: Call) -> tuple[str, int]:
    service.delete_resource(
        uow=uow(),
        organization_id=call.organization_id,
        resource_id=call.path["resource_id"],
        accepted_versions=required_versions(),
    )
    return "", 204
