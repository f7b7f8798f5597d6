"""Payments' HTTP views: the contract's operations in, service calls, representations out."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask import jsonify

from bookwell.payments import service
from bookwell.payments.domain import PaymentOverview
from bookwell.payments.ports import PaymentsUnitOfWork
from bookwell.payments.presenters import v1
from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import Dependency
from bookwell.platform.http.contract.binding import Views
from bookwell.platform.http.pagination import page_request
from bookwell.platform.http.pagination import page_response
from bookwell.platform.kernel.money import Money

views = Views()
uow = Dependency[PaymentsUnitOfWork]("payments.uow")
kick = Dependency[None]("payments.kick")  # called with a saga id: advance it now


@views.operation("listPayments")
def list_payments(call: Call) -> Response:
    query, scope = call.query, call.operation.operation_id
    page = service.list_payments(
        uow=uow(readonly=True),
        organization_id=call.organization_id,
        booking_id=query.booking_id.root if query.booking_id else None,
        page=page_request(scope, query.limit, query.cursor),
    )
    return page_response(scope, page, present=_payment, key=lambda shown: shown.payment.id)


@views.operation("getPayment")
def get_payment(call: Call) -> Response:
    payment = service.get_payment(
        uow=uow(readonly=True), organization_id=call.organization_id, payment_id=call.path["payment_id"]
    )
    return jsonify(_payment(payment))


@views.operation("createRefund")
def create_refund(call: Call) -> tuple[Response, int]:
    refund = service.request_refund(
        uow=uow(),
        organization_id=call.organization_id,
        payment_id=call.path["payment_id"],
        amount=None if call.body.amount is None else Money(call.body.amount.amount, call.body.amount.currency),
        reason="requested",
        kick=lambda saga_id: kick(saga_id=saga_id),
    )
    return jsonify(v1.refund(refund)), 201


def _payment(shown: PaymentOverview) -> dict[str, Any]:
    return v1.payment(shown.payment, shown.refunds, shown.saga)
