"""The event log over HTTP: `GET /v1/events`, the outbox's delivered events in delivery order."""

from __future__ import annotations

from flask import Response

from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import Views
from bookwell.platform.http.pagination import page_request
from bookwell.platform.http.pagination import page_response
from bookwell.platform.messaging.event_log import EventLog


def event_views(events: EventLog) -> Views:
    """The views of the event log."""
    views = Views()

    @views.operation("listEvents")
    def list_events(call: Call) -> Response:
        scope = call.operation.operation_id + ":position"  # cursors hold a position, not an event id
        page = page_request(scope, call.query.limit, call.query.cursor)
        event_type = call.query.type.value if call.query.type else None
        found = events.page(call.organization_id, event_type, page)
        return page_response(scope, found, present=lambda e: e.as_dict(), key=lambda e: str(e.position))

    return views
