"""Embedded broker benchmark: messages per second through the broker `make run` uses, beside the
alternatives considered for it (ADR 0019), in one run, interleaved round by round.

- `bookwellfs`: Bookwell's embedded broker (kombu's filesystem transport, written to a side folder
  and renamed into the queue; taken by rename);
- `filesystem`: kombu's filesystem transport as it ships (not safe under concurrent writers);
- `sqlalchemy+sqlite`: kombu's SQLAlchemy transport on a SQLite file (one table; delivered rows
  are kept, marked invisible, so the table only grows).

Each round sends then receives and acknowledges `--messages` messages of about 1 KiB on one
connection; the figure per transport is the median of `--rounds`, wall time and CPU time.
Run: `python bench/embedded_broker.py` (no server needed).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kombu import Connection
from kombu.transport import filesystem
from kombu.transport import virtual

from bookwell.platform.messaging import embedded_broker


def connection(kind: str, folder: Path) -> Connection:
    if kind == "bookwellfs":
        return Connection("bookwellfs://localhost//", transport_options=embedded_broker.transport_options(folder))
    if kind == "filesystem":
        for sub in ("queue", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        # kombu's filesystem transport caches bindings for the whole process: a new folder per
        # round needs a fresh cache, or it routes nothing.
        filesystem.Transport.global_state = virtual.BrokerState()
        options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
        }
        return Connection("filesystem://localhost//", transport_options=options)
    return Connection(f"sqla+sqlite:///{folder / 'broker.db'}")


def one_round(kind: str, messages: int) -> tuple[float, float]:
    """(wall s, CPU s) to send and then take `messages` messages."""
    with tempfile.TemporaryDirectory() as folder, connection(kind, Path(folder)) as conn:
        queue = conn.SimpleQueue("bench")
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(messages):
            queue.put({"n": n, "padding": "x" * 1000})
        for _ in range(messages):
            queue.get(timeout=10).ack()
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    kinds = ("bookwellfs", "filesystem", "sqlalchemy+sqlite")
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:  # interleaved: a noisy moment hurts every transport alike
            results[kind].append(one_round(kind, args.messages))
    base = statistics.median(w for w, _ in results["bookwellfs"])
    print(f"embedded broker: {args.messages} messages sent then taken, median of {args.rounds} interleaved rounds")
    for kind in kinds:
        wall = statistics.median(w for w, _ in results[kind])
        cpu = statistics.median(c for _, c in results[kind])
        print(
            f"  {kind:18} {args.messages / wall:8.0f} msg/s  {cpu / args.messages * 1e6:7.0f} us CPU/msg"
            f"  ({base / wall:.2f}x bookwellfs's rate)"
        )


if __name__ == "__main__":
    main()
