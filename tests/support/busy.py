"""Run a command while every core is busy with another process: `python -m tests.support.busy [--rounds N] -- CMD...`.

For the tests that must hold on a loaded machine (crash safety, chaos): one CPU-burning process per
core runs beside the command, which is run `--rounds` times in a row and must pass every time. The
burners are ended by their process ids when the rounds end, however they end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

BURN = "while True: pass"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.busy", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    cores = os.cpu_count() or 1
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(cores)]
    try:
        for round_ in range(1, args.rounds + 1):
            print(f"busy: round {round_} of {args.rounds}, {cores} burner(s) beside: {' '.join(command)}", flush=True)
            code = subprocess.call(command)
            if code != 0:
                print(f"busy: round {round_} failed with {code}", flush=True)
                return code
        print(f"busy: {args.rounds} of {args.rounds} rounds passed with every core busy", flush=True)
        return 0
    finally:
        for burner in burners:
            burner.send_signal(signal.SIGKILL)
            burner.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
