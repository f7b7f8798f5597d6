"""What the tests of `ops/` share: the repository, promtool, and the generators' drift check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROMTOOL
from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run promtool (skipped, or failed in CI, when it is not installed)."""
    require_service("promtool")
    return subprocess.run(
        [shutil.which(PROMTOOL) or PROMTOOL, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def assert_up_to_date(generator: str) -> None:
    """The committed output of `tools/<generator>` is what it generates now."""
    checked = subprocess.run(
        [sys.executable, f"tools/{generator}", "--check"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
