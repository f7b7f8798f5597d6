"""The command answers `--version` and `-h` without settings or a database."""

from __future__ import annotations

from importlib.metadata import version

from click.testing import CliRunner

from bookwell.cli import main as cli


def test_version_and_short_help_need_nothing_but_the_command() -> None:
    shown = CliRunner().invoke(cli, ["--version"], env={"BOOKWELL_DATABASE_URL": "nonsense://"})
    assert (shown.exit_code, shown.output.strip()) == (0, f"bookwell {version('bookwell')}")
    helped = CliRunner().invoke(cli, ["-h"], env={"BOOKWELL_DATABASE_URL": "nonsense://"})
    assert helped.exit_code == 0
    assert "rate-limits" in helped.output
    assert "Usage: " in helped.output
    sub = CliRunner().invoke(cli, ["org", "-h"])
    assert (sub.exit_code, "create" in sub.output) == (0, True)
