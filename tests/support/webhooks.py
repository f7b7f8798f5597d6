"""Webhook receivers on 127.0.0.1 for the tests: one on the PyPI reference verifier, one on the npm
one (`tests/interop/node/receiver.mjs`); and attempts made at once where a worker would take their job."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from bookwell.notifications.ports import Dispatcher
from bookwell.notifications.tasks import Webhooks
from bookwell.platform.registry import Registry
from tests.conftest import NODE_INTEROP


def attempt_at_once(container: Registry) -> Webhooks:
    """Make the container's webhook attempts at once, in the dispatching thread, instead of sending
    jobs: one after another (an attempt dispatches again, which would otherwise nest)."""
    webhooks = container.lookup(Dispatcher)
    assert isinstance(webhooks, Webhooks)
    waiting: deque[tuple[str, str]] = deque()
    running = threading.local()

    def attempt_now(_task: str, delivery_id: str, token: str) -> None:
        waiting.append((delivery_id, token))
        if getattr(running, "busy", False):
            return
        running.busy = True
        try:
            while waiting:
                webhooks.attempt(*waiting.popleft())
        finally:
            running.busy = False

    webhooks.send_job = attempt_now
    return webhooks


@dataclass
class Receiver:
    """A Python receiver on the PyPI verifier: answers `status` (204 when it verifies, unless told
    otherwise, with `location` if given; 500 to the first `fails_first` attempts of each webhook-id
    and to every attempt for `failing_for` seconds from the first) and records which of `secrets`
    verified each delivery."""

    secrets: list[str] = field(default_factory=list)
    status: int | None = None  # None: 204 if it verifies, 400 if not
    fails_first: int = 0
    failing_for: float = 0.0  # an outage that starts with the first attempt, however late that comes
    location: str | None = None  # sent as `Location` (with a 3xx `status`)
    # (webhook-id, indexes of the secrets that verified it, when, the status answered)
    seen: list[tuple[str, list[int], float, int]] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                headers = dict(self.headers.items())
                verified = []
                for index, secret in enumerate(receiver.secrets):
                    try:
                        Webhook(secret).verify(body, headers)
                        verified.append(index)
                    except WebhookVerificationError:
                        pass
                message_id = headers.get("webhook-id", "")
                with receiver.lock:
                    earlier = sum(1 for seen in receiver.seen if seen[0] == message_id)
                    status = receiver.status or (204 if verified else 400)
                    first = receiver.seen[0][2] if receiver.seen else time.time()
                    if earlier < receiver.fails_first or time.time() < first + receiver.failing_for:
                        status = 500
                    receiver.seen.append((message_id, verified, time.time(), status))
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> list[str]:
        """The webhook-ids answered 2xx having verified, once per attempt so answered."""
        return [seen[0] for seen in self.seen if seen[1] and 200 <= seen[3] < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class NodeReceiver:
    """`tests/interop/node/receiver.mjs`: the npm verifier, one JSON line per request on stdout."""

    def __init__(self, port: int, secrets: list[str]) -> None:
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.process = subprocess.Popen(
            ["node", str(Path(NODE_INTEROP, "receiver.mjs"))],
            env={**os.environ, "PORT": str(port), "SECRETS": " ".join(secrets)},
            stdout=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        assert self.lines.get(timeout=20) == {"port": port}

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def received(self) -> list[dict[str, Any]]:
        found = []
        while not self.lines.empty():
            found.append(self.lines.get())
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
