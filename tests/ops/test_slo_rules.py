"""The SLO rules in `ops/prometheus/` as Prometheus's own promtool reads and tests them."""

from __future__ import annotations

import re

import yaml

from tests.ops.generated import ROOT
from tests.ops.generated import assert_up_to_date
from tests.ops.generated import promtool

PROMETHEUS = ROOT / "ops" / "prometheus"
RULE_FILES = sorted(path for path in PROMETHEUS.glob("*.yaml") if not path.name.endswith(".test.yaml"))
TEST_FILES = sorted(PROMETHEUS.glob("*.test.yaml"))
RUNBOOK_BASE = "https://github.com/bookwell/bookwell/blob/main/"


def alerts() -> list[dict[str, object]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_the_committed_rules_are_what_the_slos_give() -> None:
    assert_up_to_date("slo_rules.py")


def test_promtool_accepts_every_rule_file() -> None:
    checked = promtool("check", "rules", *(path.name for path in RULE_FILES), cwd=PROMETHEUS)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_at_its_threshold_and_not_at_nine_tenths_of_it() -> None:
    tests = [case for path in TEST_FILES for case in yaml.safe_load(path.read_text())["tests"]]
    for alert in alerts():
        cases = [case for case in tests if case["alert_rule_test"][0]["alertname"] == alert["alert"]]
        assert any(case["alert_rule_test"][0]["exp_alerts"] for case in cases), f"no case where {alert['alert']} fires"
        assert any(not case["alert_rule_test"][0]["exp_alerts"] for case in cases), (
            f"no case where {alert['alert']} is silent"
        )
    tested = promtool("test", "rules", *(path.name for path in TEST_FILES), cwd=PROMETHEUS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_names_a_runbook_that_exists() -> None:
    assert alerts()
    for alert in alerts():
        url = alert["annotations"]["runbook_url"]  # type: ignore[index]
        assert url.startswith(RUNBOOK_BASE), url
        path = ROOT / url.removeprefix(RUNBOOK_BASE)
        assert re.fullmatch(r"docs/runbooks/[a-z0-9-]+\.md", url.removeprefix(RUNBOOK_BASE)), url
        assert path.is_file(), f"{alert['alert']}: no runbook at {path.relative_to(ROOT)}"
