"""Keep one process of `make run` running: `python -m bookwell.supervise NAME -- COMMAND...`.

honcho, which `make run` uses, stops every process when one exits, so one crash took the whole
stack down (issue 9). Each Procfile line runs its process under this supervisor instead: when the
process exits without being asked to, the supervisor logs `process_exited` (its exit code, and when
it restarts) and starts it again after a pause that doubles from 1 s up to 30 s, back to 1 s once a
run lasted a minute. SIGTERM or SIGINT stop it: honcho signals the whole process group, so the
process gets the signal itself and stops gracefully; the supervisor waits for it and exits with its
exit code, restarting nothing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import structlog

from bookwell.platform.logging import configure_logging

FIRST_PAUSE_S, MAX_PAUSE_S, HEALTHY_AFTER_S = 1.0, 30.0, 60.0

log = structlog.get_logger("bookwell.supervise")


def supervise(name: str, command: Sequence[str], stopping: threading.Event) -> int:
    """Run `command` until `stopping` is set, restarting it when it exits; its last exit code."""
    pause = FIRST_PAUSE_S
    restarts = 0
    while True:
        started = time.monotonic()
        process = subprocess.Popen(command)  # noqa: S603 - the Procfile's own command
        while process.poll() is None:
            stopping.wait(0.2)
        code = process.returncode
        if stopping.is_set():
            return code
        if time.monotonic() - started >= HEALTHY_AFTER_S:
            pause = FIRST_PAUSE_S
        restarts += 1
        log.error("process_exited", process=name, exit_code=code, restarts=restarts, restart_in_s=pause)
        if stopping.wait(pause):
            return code
        pause = min(MAX_PAUSE_S, pause * 2)


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m bookwell.supervise NAME -- COMMAND...", file=sys.stderr)
        return 2
    configure_logging("INFO", stream="stderr")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stopping.set())
    return supervise(argv[0], argv[2:], stopping)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
