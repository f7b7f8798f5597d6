"""The last step: the view, and presentation. An operation's view gets its `Call`; any other route
is Flask's (Swagger UI's assets, or the 404/405 a request no route matches raises). What a view
returns (a body with a status and headers, or a `Response`) becomes the `Response` every stage
above works with."""

from __future__ import annotations

from flask import Flask
from flask import Response
from flask import current_app

from bookwell.platform.http.pipeline.exchange import Exchange


def run_view(exchange: Exchange) -> Response:
    """The view's answer as a `Response`."""
    if exchange.view is None:
        return current_app.make_response(Flask.dispatch_request(current_app))
    if exchange.call is None:
        raise RuntimeError("an operation reached its view unvalidated: the validation stage is missing")
    return current_app.make_response(exchange.view(exchange.call))
