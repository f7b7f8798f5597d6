"""Each operation of the contract bound to exactly one view: what a view receives (`Call`), how a
context lists its views (`Views`) and gets its dependencies (`Dependency`), and `bind`."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Generic
from typing import TypeVar

from flask import Flask
from flask import Response
from flask import current_app
from flask.typing import ResponseReturnValue

from bookwell.platform.http.contract.spec import Contract
from bookwell.platform.http.contract.spec import Operation
from bookwell.platform.kernel.principal import Principal

T = TypeVar("T")
_BOUND = "bookwell.operations"


@dataclass(frozen=True)
class Call:
    """What a view receives: the validated request."""

    operation: Operation
    principal: Principal | None
    body: Any = None
    query: Any = None
    path: Mapping[str, str] = field(default_factory=dict)

    @property
    def caller(self) -> Principal:
        """The authenticated caller (only on secured operations)."""
        if self.principal is None:
            raise RuntimeError(f"{self.operation.operation_id} is public: it has no caller")
        return self.principal

    @property
    def organization_id(self) -> str:
        """The caller's organization (only on secured operations)."""
        return self.caller.organization_id


View = Callable[[Call], ResponseReturnValue]


class Dependency(Generic[T]):
    """A factory the app hands a context's views at start-up, called per request (e.g. a unit of work)."""

    def __init__(self, name: str) -> None:
        self._key = f"bookwell.dependency.{name}"

    def init_app(self, app: Flask, factory: Callable[..., T]) -> None:
        """Give this app's views their factory."""
        app.extensions[self._key] = factory

    def __call__(self, **kwargs: Any) -> T:
        factory: Callable[..., T] = current_app.extensions[self._key]
        return factory(**kwargs)


class Views(dict[str, View]):
    """A context's views, keyed by the operationId each one serves."""

    def operation(self, operation_id: str) -> Callable[[View], View]:
        """Register the decorated function as the view of `operation_id`."""

        def register(view: View) -> View:
            if operation_id in self:
                raise ValueError(f"two views for {operation_id}")
            self[operation_id] = view
            return view

        return register


def bind(app: Flask, contract: Contract, views: Mapping[str, View]) -> None:
    """Route every operation of the contract to its view; refuse to start if either side has no partner.

    The route only names the operation: the request pipeline (`pipeline/stages.py`) finds the
    operation and its view by the route's endpoint, and calls the view last.
    """
    missing = sorted(set(contract.operations) - set(views))
    unknown = sorted(set(views) - set(contract.operations))
    if missing or unknown:
        raise LookupError(f"operations without a view: {missing}; views without an operation: {unknown}")
    bound: dict[str, tuple[Operation, View]] = app.extensions.setdefault(_BOUND, {})
    for operation in contract.operations.values():
        if operation.operation_id in bound:
            raise ValueError(f"{operation.operation_id} is bound twice")
        app.add_url_rule(
            operation.flask_rule,
            endpoint=operation.operation_id,
            methods=[operation.method],
            provide_automatic_options=False,
        )
        bound[operation.operation_id] = (operation, views[operation.operation_id])


def bound_operation(endpoint: str | None) -> tuple[Operation, View] | None:
    """The operation a route's endpoint serves, and its view; None for a route that is no operation."""
    bound: dict[str, tuple[Operation, View]] = current_app.extensions.get(_BOUND, {})
    return None if endpoint is None else bound.get(endpoint)


def serve_contract(contract: Contract) -> Response:
    """The contract as JSON, exactly as written."""
    return Response(contract.json_bytes, mimetype="application/json")
