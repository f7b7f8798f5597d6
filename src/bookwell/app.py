"""The Flask application factory."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask

from bookwell.booking import api as booking_api
from bookwell.bootstrap import Container
from bookwell.bootstrap import bootstrap
from bookwell.catalog import api as catalog_api
from bookwell.contract import v1 as v1_models
from bookwell.identity import api as identity_api
from bookwell.identity import facade as identity_facade
from bookwell.payments import api as payments_api
from bookwell.payments.facade import CHARGING_SAGA
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
from bookwell.platform.observability.logging import configure_logging
from bookwell.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_V1 = PROJECT_ROOT / "contracts" / "openapi" / "v1.yaml"
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> Flask:
    """Build the app for `settings` (default: from the environment)."""
    settings = settings or Settings.from_env()
    container = container or bootstrap(settings)
    configure_logging(settings.log_level)

    app = PipelineApp("bookwell", static_folder=None)
    app.config.update(JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["bookwell.container"] = container

    problems.init_app(app)
    pagination.init_app(app, settings.secret_key)
    operations.init_app(app)
    identity_api.uow.init_app(app, container.identity_uow)
    catalog_api.uow.init_app(app, container.catalog_uow)
    booking_api.uow.init_app(app, container.booking_uow)
    booking_api.saga_state.init_app(app, partial(_saga_state, container))
    payments_api.uow.init_app(app, container.payments_uow)
    payments_api.kick.init_app(app, container.kick_saga)

    v1 = Contract.load(CONTRACT_V1, v1_models)
    views = {
        **operations.operation_views(v1, readiness_checks(container)),
        **identity_api.views,
        **catalog_api.views,
        **booking_api.views,
        **payments_api.views,
        **event_views(EventLog(container.database)),
    }
    bind(app, v1, views)
    stages = request_stages(
        authenticator=identity_facade.authenticator(container.identity_uow),
        idempotency=Idempotency(container.database),
        max_body_bytes=MAX_BODY_BYTES,
    )
    install(app, stages)
    return app


def _saga_state(container: Container, booking_id: str) -> dict[str, Any] | None:
    view = container.sagas.view(CHARGING_SAGA, booking_id)
    return None if view is None else view.as_dict()


def readiness_checks(container: Container) -> dict[str, operations.ReadinessCheck]:
    """What `/readyz` asks: the database, and the broker when it is a server (not the embedded folder)."""
    checks = {"database": container.database.ping}
    if not container.settings.broker_url.startswith("filesystem://"):
        checks["broker"] = container.jobs.ping_broker
    return checks
