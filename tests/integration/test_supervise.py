"""`python -m bookwell.supervise NAME -- COMMAND`, as each Procfile line runs it: a process that dies
is started again and logged; a SIGTERM to the group (what honcho sends) stops the process gracefully
and the supervisor with its exit code, with no restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CRASHES = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write('run\\n'); sys.exit(3)"
SERVES = (
    "import pathlib, signal, sys, time; pathlib.Path(sys.argv[1]).open('a').write('run\\n');"
    " signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); time.sleep(60)"
)


def supervised(code: str, runs: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "bookwell.supervise", "test", "--", sys.executable, "-c", code, str(runs)],
            stdout=sink,
            stderr=sink,
            start_new_session=True,  # its own group, as honcho gives it
        )


def wait_for_runs(runs: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runs.exists() and runs.read_text().count("run") >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} runs after {timeout}s")


def test_a_process_that_dies_is_started_again_with_a_logged_backoff(tmp_path: Path) -> None:
    runs, log = tmp_path / "runs", tmp_path / "supervise.log"
    supervisor = supervised(CRASHES, runs, log)
    try:
        wait_for_runs(runs, 3)  # pauses of 1 s, then 2 s
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
        supervisor.wait(timeout=30)
    lines = [line for line in log.read_text().splitlines() if "process_exited" in line]
    assert len(lines) >= 2
    assert '"exit_code": 3' in lines[0]
    assert '"restart_in_s": 1.0' in lines[0]
    assert '"restart_in_s": 2.0' in lines[1]


def test_sigterm_to_the_group_stops_the_process_gracefully_and_restarts_nothing(tmp_path: Path) -> None:
    runs, log = tmp_path / "runs", tmp_path / "supervise.log"
    supervisor = supervised(SERVES, runs, log)
    wait_for_runs(runs, 1)
    time.sleep(0.3)  # the child's SIGTERM handler is set right after it writes
    os.killpg(supervisor.pid, signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    time.sleep(1.5)
    assert runs.read_text().count("run") == 1, "nothing was restarted"
    assert "process_exited" not in log.read_text()
