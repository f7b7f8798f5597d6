"""The import rules catch what they claim: a violation of every rule is planted in a scratch copy of
the sources, and `lint-imports` (with the project's configuration) must fail naming each. The
untouched copy passes first, so a failure is the plant's doing; a rule without a plant fails too."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = ROOT / ".venv" / "bin" / "lint-imports"


def _allow(module: str, imported: str) -> str:
    return f"bookwell.{module} is not allowed to import {imported}"


# (file to plant in, the line to append or None for a new module, the contract it breaks, what the report names)
PLANTS = [
    ("bookwell/booking/domain.py", "import httpx", "A domain imports", _allow("booking.domain", "httpx")),
    ("bookwell/catalog/domain.py", "import celery", "A domain imports", _allow("catalog.domain", "celery")),
    ("bookwell/payments/service.py", "import psycopg", "A service imports", _allow("payments.service", "psycopg")),
    ("bookwell/identity/api.py", "import sqlalchemy", "A context's views import", _allow("identity.api", "sqlalchemy")),
    (
        "bookwell/catalog/api.py",
        "from bookwell.catalog.adapters import sql",
        "A context's views import",
        _allow("catalog.api", "bookwell.catalog.adapters.sql"),
    ),
    ("bookwell/booking/ports.py", "import flask", "Ports, presenters and events", _allow("booking.ports", "flask")),
    (
        "bookwell/catalog/presenters/v1.py",
        "import sqlalchemy",
        "Ports, presenters and events",
        _allow("catalog.presenters.v1", "sqlalchemy"),
    ),
    (
        "bookwell/booking/events.py",
        "import structlog",
        "Ports, presenters and events",
        _allow("booking.events", "structlog"),
    ),
    (
        "bookwell/identity/cli.py",
        "from bookwell.identity.adapters import sql as _sql",
        "A context's commands import",
        _allow("identity.cli", "bookwell.identity.adapters.sql"),
    ),
    (
        "bookwell/platform/kernel/ids.py",
        "import structlog",
        "The kernel is pure",
        _allow("platform.kernel.ids", "structlog"),
    ),
    ("bookwell/contract/v1.py", "import flask", "Generated contract models", _allow("contract.v1", "flask")),
    ("bookwell/payments/helpers.py", None, "Layers inside a context", "bookwell.payments.helpers"),
    ("bookwell/platform/stray.py", None, "Platform layers", "bookwell.platform.stray"),
    (
        "bookwell/booking/adapters/sql.py",
        "from bookwell.catalog import service as _catalog_service",
        "Contexts are independent",
        "bookwell.booking.adapters.sql -> bookwell.catalog.service",
    ),
    (
        "bookwell/platform/db.py",
        "from bookwell import bootstrap as _bootstrap",
        "The platform imports no context",
        "bookwell.platform.db -> bookwell.bootstrap",
    ),
    (
        "bookwell/platform/messaging/outbox.py",
        "from bookwell.platform.messaging import relay as _relay",
        "Messaging layers",
        "bookwell.platform.messaging.outbox -> bookwell.platform.messaging.relay",
    ),
    (
        "bookwell/platform/workflow/saga.py",
        "from bookwell.platform.http import problems as _problems",
        "Platform layers",
        "bookwell.platform.workflow.saga -> bookwell.platform.http.problems",
    ),
    (
        "bookwell/booking/service.py",
        "from bookwell.booking import api as _api",
        "Layers inside a context",
        "bookwell.booking.service -> bookwell.booking.api",
    ),
    (
        "bookwell/payments/facade.py",
        "from bookwell_tools import provider_sim as _sim",
        "Tools ship beside the product",
        "bookwell.payments.facade -> bookwell_tools.provider_sim",
    ),
]


def _lint(copy: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": f"{copy / 'src'}{os.pathsep}{copy / 'tools'}", "COLUMNS": "400"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=copy, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The sources, the tools and the configuration, where planting cannot touch the real ones."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "tools", tmp_path / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_every_rule_fails_on_its_planted_violation(copy: Path) -> None:
    clean = _lint(copy)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    for target, line, _, _ in PLANTS:
        path = copy / "src" / target
        if line is None:
            path.write_text('"""A module nobody placed."""\n', encoding="utf-8")
        else:
            path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    planted = _lint(copy)

    assert planted.returncode != 0
    report = " ".join((planted.stdout + planted.stderr).split())  # the report wraps long lines
    broken = report.split("Broken contracts", 1)[-1]
    config = tomllib.loads((copy / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = [contract["name"] for contract in config["tool"]["importlinter"]["contracts"]]
    planted_for = {contract for _, _, contract, _ in PLANTS}
    unplanted = [name for name in contracts if not any(name.startswith(prefix) for prefix in planted_for)]
    assert not unplanted, f"rules without a plant: {unplanted}"
    for target, _, contract, named in PLANTS:
        assert contract in broken, f"{target}: no broken contract starting {contract!r}\n{planted.stdout}"
        assert named in broken, f"{target}: the report does not name {named!r}\n{planted.stdout}"
