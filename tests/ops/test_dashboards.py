"""The Grafana dashboards in `ops/grafana/`: what tools/dashboards.py builds, every query PromQL that
promtool parses, every recording rule they read defined, every panel a runbook names present."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.ops.generated import ROOT
from tests.ops.generated import assert_up_to_date
from tests.ops.generated import promtool

GRAFANA = ROOT / "ops" / "grafana"
RUNBOOKS = ROOT / "docs" / "runbooks"


def dashboards() -> dict[str, dict[str, object]]:
    return {
        board["title"]: board for board in (json.loads(path.read_text()) for path in sorted(GRAFANA.glob("*.json")))
    }


def queries() -> list[str]:
    return [
        target["expr"] for board in dashboards().values() for panel in board["panels"] for target in panel["targets"]
    ]  # type: ignore[attr-defined]


def test_the_committed_dashboards_are_what_the_generator_builds() -> None:
    assert_up_to_date("dashboards.py")


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    # promtool parses PromQL in rule files: each query becomes a recording rule, Grafana's
    # $__rate_interval a plain range.
    rules = [
        {"record": f"dashboard:query_{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, expr in enumerate(queries())
    ]
    assert len(rules) > 20
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_recorded_series_a_dashboard_reads_is_a_rule() -> None:
    recorded = set(re.findall(r"record: (\S+)", (ROOT / "ops" / "prometheus" / "slo-rules.yaml").read_text()))
    used = {name for expr in queries() for name in re.findall(r"\bslo:[a-z_]+:[a-z0-9_]+", expr)}
    assert used
    assert used <= recorded, used - recorded


def test_every_panel_a_runbook_names_is_on_its_dashboard() -> None:
    panels = {(title, panel["title"]) for title, board in dashboards().items() for panel in board["panels"]}  # type: ignore[attr-defined]
    # `dashboard "D": panel "P", ... panel "Q"`, up to the end of its paragraph or list item.
    named = [
        (runbook.name, board, panel)
        for runbook in sorted(RUNBOOKS.glob("*.md"))
        for board, rest in re.findall(r'dashboard "([^"]+)":(.*?)(?:\n\s*\n|\n- |\Z)', runbook.read_text(), re.S)
        for panel in re.findall(r'panel "([^"]+)"', rest)
    ]
    assert len(named) >= 6, "the runbooks name the panels to look at"
    for runbook, board, panel in named:
        assert (board, panel) in panels, f"{runbook} names a panel that is not there: {board} / {panel}"
