"""What travels down the request pipeline, and the shape of a stage."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Protocol

from flask import Response

from bookwell.platform.http.contract.binding import Call
from bookwell.platform.http.contract.binding import View
from bookwell.platform.http.contract.spec import Operation


@dataclass
class Exchange:
    """One request on its way through the stages.

    `operation` and `view` are None for a route that is no operation of the contract (Swagger UI's
    assets) and for a request no route matches (404/405, answered by the view step). The
    validation stage fills in `call`; the caller is in the kernel's request context. `headers` go
    on the answer, error or not, after the idempotency stage stored it (a replay gets fresh ones).
    """

    operation: Operation | None
    view: View | None
    path_values: Mapping[str, str]
    call: Call | None = None
    headers: dict[str, str] = field(default_factory=dict)  # for the answer, whatever it is (the rate limits')


Proceed = Callable[[Exchange], Response]
"""The rest of the pipeline after a stage: give it the exchange, get the response."""


class Stage(Protocol):
    """One step of the request pipeline: do its one job, call `proceed` for the rest (or answer
    without it), and return the response, changed or not."""

    def __call__(self, exchange: Exchange, proceed: Proceed, /) -> Response: ...
