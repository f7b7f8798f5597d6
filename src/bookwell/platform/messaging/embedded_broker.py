"""The embedded job broker: kombu's filesystem transport, made safe under concurrent writers and readers.

kombu's own transport creates a message file and then writes it, so a worker listing the folder can
take a file that is still empty or half-written; the JSON decode error that follows kills the
worker (issue 9: 400 bookings at 16 in parallel did). It also hands a message to a worker by moving
it to the system's temporary folder, which is a copy, not an atomic move, when that folder is on
another file system, so two workers can both take one message.

Here, in the broker folder (`BOOKWELL_BROKER_URL=filesystem://FOLDER`):
- `incoming/`: a message is written under a name no queue matches, then renamed into `queue/`; a
  rename within one file system is atomic, so a reader sees a whole file or none (there is no
  fsync: after a power loss a file may be empty, and is then set aside as below, its delivery
  re-driven);
- `taken/`: a worker takes a message by renaming it there; only one rename of a file succeeds;
- `corrupt/`: a message that does not decode (a disk fault, a hand edit) is moved there and logged
  as `broker_message_undecodable`, and the worker goes on with the next one.
A message a worker has taken is gone from the broker: a worker killed mid-job takes its jobs with
it, and the scheduler's re-drive sends them again (ADR 0017).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

import structlog
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import filesystem
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps
from kombu.utils.json import loads

SCHEME = "bookwellfs"
FOLDERS = ("queue", "control", "incoming", "taken", "corrupt")

log = structlog.get_logger("bookwell.broker")


def transport_options(folder: Path) -> dict[str, Any]:
    """The transport options for a broker in `folder` (made if missing)."""
    for sub in FOLDERS:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.2,
    }


class Channel(filesystem.Channel):
    """Whole files only, one taker per message, undecodable messages set aside."""

    @property
    def _folder(self) -> Path:
        return Path(self.data_folder_out).parent

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu's bases name it twice
        name = f"{time.time_ns():020d}_{uuid.uuid4()}.{queue}.msg"  # sorts in sending order
        partial = self._folder / "incoming" / name
        with partial.open("wb") as file:
            file.write(str_to_bytes(dumps(payload)))
        os.replace(partial, Path(self.data_folder_out) / name)

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            taken = self._folder / "taken" / name
            try:
                os.replace(Path(self.data_folder_in) / name, taken)
            except FileNotFoundError:
                continue  # another worker took it first
            raw = taken.read_bytes()
            try:
                message = loads(bytes_to_str(raw))
                if not isinstance(message, dict) or "properties" not in message:
                    raise ValueError("not a kombu message")
            except ValueError as error:
                os.replace(taken, self._folder / "corrupt" / name)
                log.error("broker_message_undecodable", file=name, error=str(error), size=len(raw))
                continue
            taken.unlink()
            return message
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        # kombu's filesystem transport keeps declared bindings in one state for the whole process,
        # so a second broker folder in the process (another test, a benchmark) would skip writing
        # its own binding files and route nothing: each connection keeps its own.
        self.state = virtual.BrokerState()


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
