"""Stage: binding and validation. The operation's headers, body, query and path read against the
contract (`contract/parsing.py`) into the `Call` its view receives."""

from __future__ import annotations

from flask import Response

from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.parsing import check_headers
from bookwell.platform.http.contract.parsing import parse_body
from bookwell.platform.http.contract.parsing import parse_path
from bookwell.platform.http.contract.parsing import parse_query
from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.kernel.context import current


def validate(exchange: Exchange, proceed: Proceed) -> Response:
    """Fill in `exchange.call` for an operation (a route that is none passes as it is)."""
    operation = exchange.operation
    if operation is not None:
        check_headers(operation)
        exchange.call = Call(
            operation=operation,
            principal=current().principal,
            body=None if operation.body_model is None else parse_body(operation),
            query=parse_query(operation.query_model),
            path=parse_path(operation, exchange.path_values),
        )
    return proceed(exchange)
