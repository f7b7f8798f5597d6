"""Catalog's HTTP views: the contract's operations in, service calls, representations out."""

from __future__ import annotations

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

views = Views()
uow = Dependency[CatalogUnitOfWork]("catalog.uow")


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
    resource = service.get_resource(
        uow=uow(readonly=True),
        organization_id=call.organization_id,
        resource_id=call.path["resource_id"],
    )
    return not_modified(etag(resource.version)) or with_etag(jsonify(v1.resource(resource)), resource.version)


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
