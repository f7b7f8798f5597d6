"""Where contexts register themselves (in the style of Pyramid's and warehouse's `includeme`).

At start-up `bootstrap` builds one `Registry` for the settings and hands it to each context's
`registration.register` in turn (the list is `bookwell/contexts.py`). A context registers its
views and what they depend on, its units of work, its event handlers (`subscriptions`), saga steps
(`sagas`), scheduled jobs, and what it offers other contexts; the app, the CLI and the workers then
read what was registered. The registry knows no context: it holds what they gave it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

from bookwell.platform.cache import cache_for
from bookwell.platform.db import Database
from bookwell.platform.http.contract.binding import Dependency
from bookwell.platform.http.contract.binding import View
from bookwell.platform.http.pipeline.authentication import Authenticator
from bookwell.platform.messaging.inbox import Subscriptions
from bookwell.platform.messaging.jobs.app import Jobs
from bookwell.platform.messaging.jobs.config import periodic_queue
from bookwell.platform.messaging.outbox import LoggedEvent
from bookwell.platform.observability.exporter import Reading
from bookwell.platform.workflow.saga import Sagas
from bookwell.settings import Settings

T = TypeVar("T")
ADVANCE_SAGA = "bookwell.sagas.advance"


@dataclass(frozen=True)
class ScheduledJob:
    """A job the scheduler sends every `every_s` seconds; it must be idempotent and safe to run twice at once."""

    name: str
    every_s: float
    run: Callable[[], object]


class Registry:
    """The parts every context is wired with, and what the contexts registered."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.cache = cache_for(settings)  # cached reads; every unit of work that writes announces its changes to it
        self.subscriptions = Subscriptions()
        self.jobs = Jobs(settings, database, self.subscriptions)
        self.sagas = Sagas(
            database,
            lease_s=settings.saga_lease_s,
            backoff_base_s=settings.job_backoff_base_s,
            backoff_cap_s=settings.job_backoff_cap_s,
        )

        @self.jobs.task(ADVANCE_SAGA)
        def advance_saga(saga_id: str) -> None:  # a plain function: Celery checks arguments against it
            self.sagas.advance(saga_id)

        self.views: dict[str, View] = {}
        self.dependencies: list[tuple[Dependency[Any], Callable[..., Any]]] = []
        self.scheduled: dict[str, ScheduledJob] = {}
        self.meters: dict[str, list[Callable[[LoggedEvent], None]]] = {}
        self.readings: list[Reading] = []  # what the scheduler's /metrics reads from stored state
        self.authenticator: Authenticator | None = None  # `authenticate_with`, by the one context that can
        self._units_of_work: dict[type[Any], Callable[..., Any]] = {}
        self._provided: dict[type[Any], Any] = {}

    def kick_saga(self, saga_id: str) -> None:
        """Have a worker advance the saga now (its sweep would, later)."""
        self.jobs.send(ADVANCE_SAGA, saga_id)

    def add_views(self, views: Mapping[str, View]) -> None:
        """Views keyed by the operationId each serves; an operation has one view."""
        twice = sorted(set(views) & set(self.views))
        if twice:
            raise ValueError(f"views registered twice: {twice}")
        self.views.update(views)

    def inject(self, dependency: Dependency[T], factory: Callable[..., T]) -> None:
        """Give the views' `dependency` its factory, called per request."""
        if any(given is dependency for given, _ in self.dependencies):
            raise ValueError("a dependency is given a factory twice")
        self.dependencies.append((dependency, factory))

    def authenticate_with(self, authenticator: Authenticator) -> None:
        """Name how bearer credentials become callers; one context does, once."""
        if self.authenticator is not None:
            raise ValueError("an authenticator is registered already")
        self.authenticator = authenticator

    def add_unit_of_work(self, port: type[T], factory: Callable[..., T]) -> None:
        """The factory of a context's unit of work, by the port it implements (for the CLI and tests)."""
        if port in self._units_of_work:
            raise ValueError(f"{port.__name__} is registered twice")
        self._units_of_work[port] = factory

    def unit_of_work(self, port: type[T]) -> Callable[..., T]:
        """The registered factory of units of work for `port`."""
        factory: Callable[..., T] = self._units_of_work[port]
        return factory

    def provide(self, kind: type[T], value: T) -> None:
        """Offer `value` to the contexts registered after this one (a facade, an adapter)."""
        if kind in self._provided:
            raise ValueError(f"{kind.__name__} is provided twice")
        self._provided[kind] = value

    def lookup(self, kind: type[T]) -> T:
        """What an earlier context provided as `kind`."""
        if kind not in self._provided:
            raise LookupError(f"nothing provides {kind.__name__}: register its context earlier in the list")
        value: T = self._provided[kind]
        return value

    def meter(self, event_types: Iterable[str], count: Callable[[LoggedEvent], None]) -> None:
        """Have the relay call `count` with each delivered event of these types (business metrics:
        counted once per committed event, in one process)."""
        for event_type in event_types:
            self.meters.setdefault(event_type, []).append(count)

    def count_relayed(self, event: LoggedEvent) -> None:
        """Run the meters of a delivered event (the relay's `meter`)."""
        for count in self.meters.get(event.type, ()):
            count(event)

    def read_state(self, reading: Reading) -> None:
        """Add a reading of stored state (a backlog, an age) to the scheduler's metrics, taken when scraped."""
        self.readings.append(reading)

    def schedule(self, name: str, every_s: float, run: Callable[[], object]) -> None:
        """Register `run` as the job `name`, sent by the scheduler every `every_s` seconds."""
        if name in self.scheduled:
            raise ValueError(f"{name} is scheduled twice")

        def job() -> object:  # a plain function: Celery would count a bound method's `self` as an argument
            return run()

        self.jobs.task(name)(job)
        self.scheduled[name] = ScheduledJob(name, every_s, run)

    def timetable(self) -> dict[str, dict[str, Any]]:
        """What the scheduler sends and how often: each job on the periodic queue (never behind a
        backlog of deliveries), expiring after its interval (a stopped worker finds no pile of stale copies)."""
        queue = periodic_queue(self.settings)
        return {
            job.name: {"task": job.name, "schedule": job.every_s, "options": {"expires": job.every_s, "queue": queue}}
            for job in self.scheduled.values()
        }
