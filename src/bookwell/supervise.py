"""Keep one process of `make run` running: `python -m bookwell.supervise NAME -- COMMAND...`.

honcho, which `make run` uses, stops every process when one exits, so one crash took the whole
stack down (issue 9). Each Procfile line runs its process under this supervisor instead: when the
process exits without being asked to, the supervisor logs `process_exited` (its exit code, and when
it restarts) and starts it again after a pause that doubles from 1 s up to 30 s, back to 1 s once a
run lasted a minute. SIGTERM or SIGINT stop it: honcho signals the whole process group, so the
process gets the signal itself and stops gracefully (a process started just as the stop came is
sent it); the supervisor waits for it and exits with its exit code (128 + the signal's number for
one killed by a signal), restarting nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import structlog

from bookwell.platform.observability.logging import configure_logging

FIRST_PAUSE_S, MAX_PAUSE_S, HEALTHY_AFTER_S = 1.0, 30.0, 60.0

log = structlog.get_logger("bookwell.supervise")


class Stop:
    """The signal that asked the supervisor to stop, if one did (set from a signal handler: a
    plain attribute, no lock, so a handler can never wait on the main thread)."""

    signum: int | None = None


def supervise(name: str, command: Sequence[str], stop: Stop) -> int:
    """Run `command` until a stop is asked for, restarting it when it exits; its last exit code."""
    pause = FIRST_PAUSE_S
    restarts = 0
    while stop.signum is None:
        started = time.monotonic()
        try:
            process = subprocess.Popen(command)  # noqa: S603 - the Procfile's own command
        except OSError as error:
            log.error("process_not_started", process=name, error=str(error), restart_in_s=pause)
        else:
            if stop.signum is not None:  # asked to stop while starting it: it missed the signal
                process.send_signal(stop.signum)
            code = process.wait()  # a signal's handler runs, then the wait goes on
            if stop.signum is not None:
                return code if code >= 0 else 128 - code
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                pause = FIRST_PAUSE_S
            restarts += 1
            log.error("process_exited", process=name, exit_code=code, restarts=restarts, restart_in_s=pause)
        deadline = time.monotonic() + pause
        while stop.signum is None and time.monotonic() < deadline:
            time.sleep(0.1)
        pause = min(MAX_PAUSE_S, pause * 2)
    return 128 + stop.signum


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m bookwell.supervise NAME -- COMMAND...", file=sys.stderr)
        return 2
    # The same format as the process it watches (it reads no settings: `make run` sets the variable).
    configure_logging("INFO", stream="stderr", fmt=os.environ.get("BOOKWELL_LOG_FORMAT", "json"))
    stop = Stop()

    def asked(signum: int, _frame: object) -> None:
        stop.signum = signum

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, asked)
    return supervise(argv[0], argv[2:], stop)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
