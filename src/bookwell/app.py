"""The Flask application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from bookwell.bootstrap import bootstrap
from bookwell.contract import v1 as v1_models
from bookwell.platform.http import operations
from bookwell.platform.http import pagination
from bookwell.platform.http import problems
from bookwell.platform.http.contract.binding import bind
from bookwell.platform.http.contract.spec import Contract
from bookwell.platform.http.events import event_views
from bookwell.platform.http.pipeline.idempotency import Idempotency
from bookwell.platform.http.pipeline.stages import PipelineApp
from bookwell.platform.http.pipeline.stages import install
from bookwell.platform.http.pipeline.stages import request_stages
from bookwell.platform.messaging.event_log import EventLog
from bookwell.platform.observability import tracing
from bookwell.platform.observability.logging import configure_logging
from bookwell.platform.ratelimit import PolicyResolver
from bookwell.platform.ratelimit import build_rate_limiter
from bookwell.platform.ratelimit import default_policies
from bookwell.platform.registry import Registry
from bookwell.settings import Settings

CONTRACT_V1 = Path(__file__).resolve().parent / "contract" / "openapi" / "v1.yaml"  # package data, in a wheel too
MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings: Settings | None = None, *, container: Registry | None = None, contract: Path = CONTRACT_V1
) -> Flask:
    """Build the app for `settings` (default: from the environment), serving `contract` with the
    views the contexts registered."""
    settings = settings or Settings.from_env()
    container = container or bootstrap(settings)
    configure_logging(settings.log_level, fmt=settings.log_format)
    if container.authenticator is None:
        raise LookupError("no registered context authenticates callers")

    app = PipelineApp("bookwell", static_folder=None)
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=MAX_BODY_BYTES)  # the body-limit stage's backstop
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["bookwell.container"] = container

    tracing.instrument_app(app)
    problems.init_app(app)
    pagination.init_app(app, settings.secret_key)
    operations.init_app(app)
    for dependency, factory in container.dependencies:
        dependency.init_app(app, factory)

    v1 = Contract.load(contract, v1_models)
    views = {
        **operations.operation_views(v1, readiness_checks(container)),
        **event_views(EventLog(container.database)),
        **container.views,
    }
    bind(app, v1, views)
    stages = request_stages(
        authenticator=container.authenticator,
        limiter=build_rate_limiter(settings, container.database),
        policies=PolicyResolver(container.database, settings),
        auth_failures=default_policies(settings)["auth_failures"],
        proxy_hops=settings.proxy_hops,
        idempotency=Idempotency(container.database),
        max_body_bytes=MAX_BODY_BYTES,
    )
    install(app, stages)
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    return app


def readiness_checks(container: Registry) -> dict[str, operations.ReadinessCheck]:
    """What `/readyz` asks: the database, and the broker when it is a server (not the embedded folder)."""
    checks = {"database": container.database.ping}
    if not container.settings.broker_url.startswith("filesystem://"):
        checks["broker"] = container.jobs.ping_broker
    return checks
