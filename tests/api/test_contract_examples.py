"""The contract's examples work as written, sent the way the reference page (`/docs`) sends them:
the example days moved to a week from today, an example id replaced by the one just created, the
example Idempotency-Key by a new one.
(`tests/contract/test_examples.py` checks them against their schemas;
`tests/integration/test_try_it_out.py` clicks through the page itself in a headless browser.)"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import yaml

from bookwell.app import CONTRACT_V1
from bookwell.platform.http.operations import _DOCS_PAGE
from tests.api.conftest import Api

CONTRACT = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))
EXAMPLE_DAY = "2027-06-07"  # with the next day, what the page moves on (src/bookwell/platform/http/operations.py)
EXAMPLE_KEY = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_ID = re.compile(r"\b(org|key|res|bkg|pay|rfd|evt)_[0-9A-Z]{26}\b")


def _operation(operation_id: str) -> dict[str, Any]:
    for item in CONTRACT["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return operation
    raise KeyError(operation_id)


def _as_sent(example: Any, created: dict[str, str]) -> Any:
    """An example as the page sends it: its days moved on, its ids replaced by created ones."""
    today = datetime.now(UTC).date()
    text = json.dumps(example)
    text = text.replace("2027-06-07", str(today + timedelta(days=7))).replace(
        "2027-06-08", str(today + timedelta(days=8))
    )
    return json.loads(_ID.sub(lambda m: created.get(m[1], m[0]), text))


def _body(operation_id: str, created: dict[str, str]) -> Any:
    return _as_sent(_operation(operation_id)["requestBody"]["content"]["application/json"]["example"], created)


def _key() -> str:
    """The example Idempotency-Key, replaced by a new one as the page does."""
    assert _parameter("createBooking", "Idempotency-Key", {}) == EXAMPLE_KEY
    return str(uuid.uuid4())


def _parameter(operation_id: str, name: str, created: dict[str, str]) -> Any:
    parameters = _operation(operation_id).get("parameters", [])
    for listed in parameters:
        parameter = (
            CONTRACT["components"]["parameters"][listed["$ref"].rsplit("/", 1)[1]] if "$ref" in listed else listed
        )
        if parameter["name"] == name:
            return _as_sent(parameter["example"], created)
    raise KeyError(name)


def test_create_a_resource_ask_its_availability_and_book_it_with_the_examples_as_written(api: Api) -> None:
    created: dict[str, str] = {}
    resource = api.post("/v1/resources", json=_body("createResource", created))
    assert resource.status_code == 201, resource.get_json()
    created["res"] = resource.get_json()["id"]

    window = {name: _parameter("getAvailability", name, created) for name in ("from", "to")}
    availability = api.get(f"/v1/resources/{created['res']}/availability", query_string=window)
    assert availability.status_code == 200, availability.get_json()
    booking = _body("createBooking", created)
    assert {"start": booking["start"], "end": booking["end"], "remaining": 1} in availability.get_json()["slots"]

    booked = api.post("/v1/bookings", json=booking, headers={"Idempotency-Key": _key()})
    assert booked.status_code == 201, booked.get_json()
    assert (booked.get_json()["resource_id"], booked.get_json()["price"]) == (
        created["res"],
        {"amount": 2500, "currency": "EUR"},
    )


def test_the_other_writes_work_with_their_examples_as_written(api: Api) -> None:
    created: dict[str, str] = {}
    created["res"] = api.post("/v1/resources", json=_body("createResource", created)).get_json()["id"]
    if_match = _parameter("updateResource", "If-Match", created)
    updated = api.patch(
        f"/v1/resources/{created['res']}", json=_body("updateResource", created), headers={"If-Match": if_match}
    )
    assert updated.status_code == 200, updated.get_json()

    key = api.post("/v1/api-keys", json=_body("createApiKey", created))
    assert key.status_code == 201, key.get_json()

    booking = api.post(
        "/v1/bookings",
        json=_body("createBooking", created),
        headers={"Idempotency-Key": _key()},
    )
    created["bkg"] = booking.get_json()["id"]
    cancelled = api.post(
        f"/v1/bookings/{created['bkg']}/cancel",
        json=_body("cancelBooking", created),
        headers={"Idempotency-Key": _key()},
    )
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["cancellation_reason"] == _body("cancelBooking", created)["reason"]


def test_the_page_moves_the_day_and_replaces_the_key_the_contract_uses() -> None:
    booking = _operation("createBooking")["requestBody"]["content"]["application/json"]["example"]
    assert booking["start"].startswith(EXAMPLE_DAY)
    assert _parameter("createBooking", "Idempotency-Key", {}) == EXAMPLE_KEY
    for constant in (f'replaceAll("{EXAMPLE_DAY}"', f'const EXAMPLE_KEY = "{EXAMPLE_KEY}"'):
        assert constant in _DOCS_PAGE
