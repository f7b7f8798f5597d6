"""A throwaway context: one operation (`getThrowawayGreeting`), registered the way every context is."""

from __future__ import annotations

import click
from flask import Response
from flask import jsonify

from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import Dependency
from bookwell.platform.http.contract.binding import Views
from bookwell.platform.registry import Registry

OPERATION = {
    "get": {
        "operationId": "getThrowawayGreeting",
        "summary": "A greeting for the caller's organization",
        "security": [{"bearer": ["resources:read"]}],
        "responses": {"200": {"description": "The greeting"}},
    }
}
PATH = "/v1/throwaway/greeting"

views = Views()
greeting = Dependency[str]("throwaway.greeting")
commands: tuple[click.Command, ...] = ()
ticks: list[int] = []


@views.operation("getThrowawayGreeting")
def get_greeting(call: Call) -> Response:
    return jsonify(greeting=greeting(organization_id=call.organization_id))


def register(registry: Registry) -> None:
    registry.inject(greeting, lambda organization_id: f"hello, {organization_id}")
    registry.add_views(views)
    registry.schedule("tests.throwaway.tick", 60.0, tick)


def tick() -> int:
    ticks.append(1)
    return len(ticks)
