"""`bookwell rate-limits`: an operator gives an organization its own quota, the API applies it
within seconds, and clears it again; mistakes are one-line errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bookwell.cli import main as cli
from bookwell.identity import service as identity_service
from bookwell.identity.adapters.sql import SqlIdentityUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.ratelimit import Policy
from bookwell.platform.ratelimit import PolicyResolver
from bookwell.settings import Settings


@pytest.fixture
def run(database: Database, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BOOKWELL_DATABASE_URL", database.settings.database_url)
    monkeypatch.setenv("BOOKWELL_BROKER_URL", "memory://")
    monkeypatch.delenv("BOOKWELL_RATE_LIMIT_READS", raising=False)
    return lambda *args: CliRunner().invoke(cli, list(args))


def test_an_override_is_set_listed_applied_and_cleared(database: Database, run) -> None:  # type: ignore[no-untyped-def]
    organization, _ = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Big")
    resolver = PolicyResolver(database, database.settings, cache_s=0)
    default = resolver.policies_for(organization.id)["writes"]

    assert run("rate-limits", "set", organization.id, "writes", "900/30").exit_code == 0
    assert resolver.policies_for(organization.id)["writes"] == Policy("writes", 900, 30)
    listed = run("rate-limits", "list", "--org", organization.id).output.splitlines()
    assert f"{organization.id} writes 900/30 (override)" in listed
    assert f"{organization.id} reads {Settings.model_fields['rate_limit_reads'].default} (default)" in listed

    cleared = run("rate-limits", "clear", organization.id, "writes")
    assert cleared.exit_code == 0, cleared.output
    assert resolver.policies_for(organization.id)["writes"] == default


def test_mistakes_are_one_line_errors(database: Database, run) -> None:  # type: ignore[no-untyped-def]
    organization, _ = identity_service.create_organization(uow=SqlIdentityUnitOfWork(database), name="Careful")
    unknown_org = run("rate-limits", "set", "org_nope", "writes", "10/60")
    assert (unknown_org.exit_code, unknown_org.output.strip()) == (1, "Error: no organization org_nope")
    malformed = run("rate-limits", "set", organization.id, "writes", "lots")
    assert malformed.exit_code == 2
    assert "QUOTA/WINDOW_S" in malformed.output
    per_address = run("rate-limits", "set", organization.id, "auth_failures", "10/60")
    assert per_address.exit_code == 2  # counted per client address, not per organization
    nothing = run("rate-limits", "clear", organization.id, "reads")
    assert (nothing.exit_code, nothing.output.strip()) == (1, f"Error: {organization.id} has no override for reads")
    assert "Traceback" not in "".join(r.output for r in (unknown_org, malformed, per_address, nothing))
