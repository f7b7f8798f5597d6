"""Event payloads have their own versioned schema (src/bookwell/contract/events/v1.yaml): every event type it
lists is produced here, through the API and the sagas, and each payload validates against it; and
the schema lists exactly the event types the contract's `EventType` names."""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml
from sqlalchemy import select

from bookwell.app import CONTRACT_V1
from bookwell.booking import service as booking_service
from bookwell.booking.ports import BookingUnitOfWork
from bookwell.platform.messaging.outbox import outbox
from tests.api.test_bookings import at
from tests.api.test_bookings import key
from tests.api.test_bookings import resource
from tests.integration.conftest import System
from tests.support.webhooks import Receiver

EVENTS_V1 = CONTRACT_V1.parents[1] / "events" / "v1.yaml"


def _validators() -> dict[str, jsonschema.protocols.Validator]:
    """Per event type, a validator of its `data` (`{"object": <the named v1 schema>}`)."""
    contract = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))
    events = yaml.safe_load(EVENTS_V1.read_text(encoding="utf-8"))
    assert events["version"] == 1
    validators = {}
    for event_type, shape in events["events"].items():
        schema = {
            "type": "object",
            "required": ["object"],
            "additionalProperties": False,
            "properties": {"object": {"$ref": f"#/components/schemas/{shape['object']}"}},
            "components": contract["components"],
        }
        validators[event_type] = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return validators


def test_the_schema_names_every_event_type_of_the_contract() -> None:
    contract = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))
    assert set(_validators()) == set(contract["components"]["schemas"]["EventType"]["enum"])


def test_every_event_type_is_produced_and_its_payload_matches_the_schema(system: System) -> None:
    api = system.api
    court = resource(api)
    path = f"/v1/resources/{court}"
    assert api.patch(path, json={"description": "Clay"}, headers={"If-Match": '"v1"'}).status_code == 200
    gone = resource(api)
    assert api.delete(f"/v1/resources/{gone}", headers={"If-Match": '"v1"'}).status_code == 204

    free = _book(system, court, "Ada")  # created and confirmed at once (no price)
    assert api.post(f"/v1/bookings/{free['id']}/cancel", json={}, headers=key()).status_code == 200

    paid = system.book("tok_ok")  # payment.captured, booking.confirmed
    system.drive()
    cancelled = api.post(f"/v1/bookings/{paid['id']}/cancel", json={"reason": "rain"}, headers=key())
    assert cancelled.status_code == 200  # booking.cancelled, then payment.refunded by its saga
    system.drive()

    declined = system.book("tok_decline")  # payment.failed, booking.failed
    system.drive()
    assert system.booking(declined["id"])["status"] == "failed"

    lapsing = system.book("tok_slow")  # a charge whose answer is lost: the hold lapses meanwhile
    system.lapse_hold(lapsing["id"])
    booking_service.expire_all_holds(uow=system.container.unit_of_work(BookingUnitOfWork))
    system.drive()

    receiver = Receiver(status=410)  # a partner gone: its endpoint is disabled (webhook_endpoint.disabled)
    try:
        hook = {"url": receiver.url, "event_types": ["resource.created"]}
        assert api.post("/v1/webhook-endpoints", json=hook).status_code == 201
        resource(api)
        system.drive()
    finally:
        receiver.close()

    validators = _validators()
    with system.database.engine.connect() as connection:
        rows = connection.execute(select(outbox.c.type, outbox.c.payload).order_by(outbox.c.seq)).all()
    assert {row.type for row in rows} == set(validators)
    for row in rows:
        errors = sorted(validators[row.type].iter_errors(row.payload), key=str)
        assert not errors, f"{row.type}: {[error.message for error in errors]}"


def _book(system: System, court: str, name: str) -> dict[str, Any]:
    body = {
        "resource_id": court,
        "start": at(2, 9),
        "end": at(2, 10),
        "customer": {"name": name, "email": "ada@example.com"},
    }
    response = system.api.post("/v1/bookings", json=body, headers=key())
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())
