"""What the notifications service needs from the outside world."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bookwell.notifications.domain import Attempt
from bookwell.notifications.domain import Delivery
from bookwell.notifications.domain import DeliveryStatus
from bookwell.notifications.domain import Endpoint
from bookwell.notifications.domain import EventToSend
from bookwell.platform.kernel.events import EventRecorder
from bookwell.platform.kernel.pages import Page
from bookwell.platform.kernel.pages import PageRequest
from bookwell.platform.kernel.uow import UnitOfWork


class UrlChecker(Protocol):
    def check(self, url: str, *, unresolved_ok: bool) -> object:
        """Raise `UrlForbidden` unless a webhook may be sent to `url` (`adapters/http.UrlPolicy`)."""
        ...


class Dispatcher(Protocol):
    def kick(self) -> None:
        """Send an attempt job for each delivery that is due now (`tasks.Webhooks`)."""
        ...


class EndpointRepository(Protocol):
    def add(self, endpoint: Endpoint) -> None: ...

    def get(self, organization_id: str, endpoint_id: str) -> Endpoint | None:
        """The endpoint, unless it belongs to another organization (or none is)."""
        ...

    def by_id(self, endpoint_id: str) -> Endpoint | None:
        """The endpoint whatever its organization (for a delivery already bound to it)."""
        ...

    def list(self, organization_id: str, page: PageRequest) -> Page[Endpoint]: ...

    def active(self, organization_id: str) -> Sequence[Endpoint]:
        """The organization's active endpoints."""
        ...

    def save(self, endpoint: Endpoint, *, previous_version: int) -> bool:
        """Write the endpoint if its stored version is still `previous_version`; False if it moved on."""
        ...

    def delete(self, endpoint: Endpoint) -> None:
        """Remove it and its deliveries."""
        ...

    def note_health(self, endpoint_id: str, *, failing_since: datetime | None) -> None:
        """Record since when every attempt failed (None: the last one succeeded)."""
        ...


class DeliveryRepository(Protocol):
    def add(self, deliveries: Sequence[Delivery]) -> Sequence[str]:
        """Store new deliveries; one whose endpoint already has its event stays as it was. The ids stored."""
        ...

    def get(self, organization_id: str, delivery_id: str, *, with_attempts: bool = False) -> Delivery | None: ...

    def by_id(self, delivery_id: str) -> Delivery | None: ...

    def of_events(self, endpoint_id: str, event_ids: Sequence[str]) -> dict[str, Delivery]:
        """The endpoint's deliveries of these events, by event id."""
        ...

    def list(
        self, organization_id: str, endpoint_id: str, status: DeliveryStatus | None, page: PageRequest
    ) -> Page[Delivery]: ...

    def backlog(self, now: datetime) -> tuple[int, int, datetime | None]:
        """Pending deliveries, how many of those to active endpoints are due and unclaimed, and the
        oldest due time among them."""
        ...

    def due(self, now: datetime, *, limit: int, per_endpoint: int) -> Sequence[str]:
        """Pending deliveries due by `now` on active endpoints, oldest due first, with no endpoint
        given more than its free slots of `per_endpoint` claims (of one while it is failing)."""
        ...

    def take_dispatch_turn(self) -> None:
        """Wait until no other transaction is dispatching, and hold the turn until this one ends."""
        ...

    def claim(self, delivery_ids: Sequence[str], now: datetime, *, until: datetime, token: str) -> Sequence[str]:
        """Claim those of `delivery_ids` that are still due and unclaimed, for `token` until `until`;
        the ids claimed."""
        ...

    def record(self, after: Delivery, attempt: Attempt, *, token: str) -> bool:
        """Log an attempt made under the claim `token`; if the delivery is still pending under that
        claim, store its state after it and release the claim. Whether the state was stored (an
        attempt whose claim was taken over or restarted meanwhile is logged, and changes nothing else)."""
        ...

    def release(self, delivery_id: str, token: str) -> None:
        """Give up the claim `token` on a delivery without an attempt: it is due again at once."""
        ...

    def restart(self, delivery_ids: Sequence[str], now: datetime) -> None:
        """Make deliveries pending and due at `now` on a fresh schedule (`Delivery.again`); one being
        attempted right now (claimed, its claim live) is left to that attempt, which goes now anyway."""
        ...


class LoggedEvents(Protocol):
    def since(self, organization_id: str, since: datetime, types: Sequence[str], limit: int) -> Sequence[EventToSend]:
        """Up to `limit` of the organization's delivered events of `types` recorded at or after `since`
        (at most the log's retention ago), in order."""
        ...


class NotificationsUnitOfWork(UnitOfWork, Protocol):
    @property
    def endpoints(self) -> EndpointRepository: ...

    @property
    def deliveries(self) -> DeliveryRepository: ...

    @property
    def logged_events(self) -> LoggedEvents: ...

    @property
    def events(self) -> EventRecorder: ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this work is durable (see SqlUnitOfWork.after_commit)."""
        ...
