"""Booking's HTTP views: the contract's operations in, service calls, representations out."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC
from datetime import datetime
from functools import partial
from typing import Any

from flask import Response
from flask import jsonify

from bookwell.booking import service
from bookwell.booking.domain import Booking
from bookwell.booking.domain import BookingRequest
from bookwell.booking.domain import Status
from bookwell.booking.domain import check_span
from bookwell.booking.ports import BookingFilter
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.booking.presenters import v1
from bookwell.platform.http.conditional import etag
from bookwell.platform.http.conditional import not_modified
from bookwell.platform.http.conditional import with_etag
from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import Dependency
from bookwell.platform.http.contract.binding import Views
from bookwell.platform.http.pagination import page_request
from bookwell.platform.http.pagination import page_response
from bookwell.platform.http.prefer import requested_wait
from bookwell.platform.http.prefer import wait_for_final
from bookwell.platform.kernel.cache import Fill
from bookwell.platform.kernel.cache import ReadCache
from bookwell.platform.kernel.cache import Scope
from bookwell.platform.kernel.clock import rfc3339
from bookwell.platform.kernel.clock import utcnow
from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import InvalidInput

views = Views()
uow = Dependency[BookingUnitOfWork]("booking.uow")
cache = Dependency[ReadCache]("booking.cache")
saga_state = Dependency[dict[str, Any] | None]("booking.saga_state")  # called with booking_id=...
AVAILABILITY_MAX_AGE = 5  # seconds: a hold placed now shows within this long in a cached answer


def _utc(moment: datetime, pointer: str) -> datetime:
    """A request's instant in UTC; one that UTC cannot represent (year 1 or 9999 with an offset) is 422."""
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise InvalidInput("That instant is out of range.", errors=(FieldError(pointer, "out of range"),)) from error


@views.operation("createBooking")
def create_booking(call: Call) -> Response:
    body = call.body
    request = BookingRequest(
        organization_id=call.organization_id,
        resource_id=body.resource_id.root,
        start=_utc(body.start, "/start"),
        end=_utc(body.end, "/end"),
        quantity=body.quantity or 1,
        customer_name=body.customer.name,
        customer_email=body.customer.email.root,
        payment_token=body.payment.token if body.payment else None,
        metadata=body.metadata.root if body.metadata else {},
    )
    booking = service.place_booking(uow=uow(), request=request)
    response = _created(booking)
    wait = requested_wait()
    if wait is not None and booking.status is Status.PENDING:
        return wait_for_final(response, wait, partial(_final, call.organization_id, booking.id))
    return response


def _final(organization_id: str, booking_id: str) -> Response | None:
    """The booking's 201 answer once it is no longer pending (for `Prefer: wait`); None until then."""
    booking = service.get_booking(uow=uow(readonly=True), organization_id=organization_id, booking_id=booking_id)
    return None if booking.status is Status.PENDING else _created(booking)


def _created(booking: Booking) -> Response:
    response = with_etag(jsonify(v1.booking(booking)), booking.version)
    response.status_code = 201
    response.headers["Location"] = f"/v1/bookings/{booking.id}"
    return response


@views.operation("listBookings")
def list_bookings(call: Call) -> Response:
    query, scope = call.query, call.operation.operation_id
    filters = BookingFilter(
        resource_id=query.resource_id.root if query.resource_id else None,
        status=Status(query.status.value) if query.status else None,
        customer_email=query.customer_email.root if query.customer_email else None,
        start_from=None if query.start_from is None else _utc(query.start_from, "/query/start_from"),
        start_to=None if query.start_to is None else _utc(query.start_to, "/query/start_to"),
    )
    page = service.list_bookings(
        uow=uow(readonly=True),
        organization_id=call.organization_id,
        filters=filters,
        page=page_request(scope, query.limit, query.cursor),
    )
    return page_response(scope, page, present=v1.booking, key=lambda b: b.id)


@views.operation("getBooking")
def get_booking(call: Call) -> Response:
    booking = service.get_booking(
        uow=uow(readonly=True), organization_id=call.organization_id, booking_id=call.path["booking_id"]
    )
    saga = saga_state(booking_id=booking.id)
    shown = jsonify(v1.booking(booking) | {"saga": saga})
    if saga is not None and saga["status"] != "done":
        # A running saga changes this answer without changing the booking's version: no ETag
        # (so no 304) until it ends; from then on the version is the whole truth again.
        return shown
    return not_modified(etag(booking.version)) or with_etag(shown, booking.version)


@views.operation("cancelBooking")
def cancel_booking(call: Call) -> Response:
    booking = service.cancel_booking(
        uow=uow(), organization_id=call.organization_id, booking_id=call.path["booking_id"], reason=call.body.reason
    )
    return with_etag(jsonify(v1.booking(booking)), booking.version)


@views.operation("getAvailability")
def get_availability(call: Call) -> Response:
    organization_id, resource_id = call.organization_id, call.path["resource_id"]
    start = _utc(call.query.from_, "/query/from")
    end = _utc(call.query.to, "/query/to")
    check_span(start, end, utcnow())  # refused before any cached answer, as the service would
    name = f"availability.v1 {start.isoformat()} {end.isoformat()}"
    body = cache().read(
        Scope(organization_id, resource_id), name, partial(_availability, organization_id, resource_id, start, end)
    )
    tag = hashlib.sha256(body).hexdigest()[:32]
    response = not_modified(tag) or Response(body, mimetype="application/json")
    response.set_etag(tag)
    response.cache_control.max_age = AVAILABILITY_MAX_AGE
    return response


def _availability(organization_id: str, resource_id: str, start: datetime, end: datetime) -> Fill:
    """The span's slots as API v1 shows them, kept until a write or the moment time alone changes them."""
    answer = service.availability(
        uow=uow(readonly=True), organization_id=organization_id, resource_id=resource_id, start=start, end=end
    )
    body = json.dumps(
        {
            "resource_id": resource_id,
            "from": rfc3339(start),
            "to": rfc3339(end),
            "slots": [v1.slot(slot) for slot in answer.slots],
        },
        separators=(",", ":"),
    ).encode()
    until = answer.unchanged_until
    return Fill(body, ttl_s=math.inf if until is None else (until - utcnow()).total_seconds())
