"""A context joins Bookwell through its registration alone: the throwaway context in
`tests/support/throwaway` is served by adding it to the list of contexts, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from flask import Flask

from bookwell.app import CONTRACT_V1
from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.contexts import CONTEXTS
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.platform.db import Database
from tests.support.throwaway import registration as throwaway


@pytest.fixture
def throwaway_app(sqlite_database: Database, tmp_path: Path) -> Flask:
    document = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))
    document["paths"][throwaway.PATH] = throwaway.OPERATION
    contract = tmp_path / "v1-with-throwaway.yaml"
    contract.write_text(yaml.safe_dump(document), encoding="utf-8")
    settings = sqlite_database.settings
    container = bootstrap(settings, database=sqlite_database, contexts=[*CONTEXTS, "tests.support.throwaway"])
    return create_app(settings, container=container, contract=contract)


def test_a_context_registered_by_the_list_alone_is_served_through_the_pipeline(throwaway_app: Flask) -> None:
    container = throwaway_app.extensions["bookwell.container"]
    organization, token = identity_service.create_organization(
        uow=container.unit_of_work(IdentityUnitOfWork)(), name="Throwaway"
    )
    client = throwaway_app.test_client()

    answer = client.get(throwaway.PATH, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-throwaway"})
    assert (answer.status_code, answer.get_json()) == (200, {"greeting": f"hello, {organization.id}"})
    assert answer.headers["X-Request-ID"] == "req-throwaway"  # the request-context stage ran

    refused = client.get(throwaway.PATH)
    assert (refused.status_code, refused.mimetype) == (401, "application/problem+json")  # and authentication

    assert "tests.throwaway.tick" in container.timetable()  # its scheduled job too
    assert "tests.throwaway.tick" in container.jobs.celery.tasks


def test_the_same_operation_without_its_context_is_refused_at_start_up(
    sqlite_database: Database, tmp_path: Path
) -> None:
    document = yaml.safe_load(CONTRACT_V1.read_text(encoding="utf-8"))
    document["paths"][throwaway.PATH] = throwaway.OPERATION
    contract = tmp_path / "v1-with-throwaway.yaml"
    contract.write_text(yaml.safe_dump(document), encoding="utf-8")
    settings = sqlite_database.settings
    with pytest.raises(LookupError, match="getThrowawayGreeting"):
        create_app(settings, container=bootstrap(settings, database=sqlite_database), contract=contract)
