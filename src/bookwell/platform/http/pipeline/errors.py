"""Stage: errors as problem+json. Whatever a stage below raises is answered through the app's
error handlers (`problems.py`): a problem we meant, or a logged 500 that quotes the request id."""

from __future__ import annotations

from flask import Response
from flask import current_app

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed


def render_errors(exchange: Exchange, proceed: Proceed) -> Response:
    """The rest of the request's answer, or the problem+json for what it raised."""
    try:
        return proceed(exchange)
    except Exception as error:  # noqa: BLE001 - every error gets an answer; the handlers log the unexpected
        return current_app.make_response(current_app.handle_user_exception(error))
