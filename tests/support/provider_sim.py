"""The payment-provider simulator as a real process (`bookwell_tools.provider_sim.serve`) on a free local port.

For tests that need a provider across a socket: the adapter's tests and chaos tests. The helper
starts the process, waits until it answers, drives its control API (faults, reset, ledger, request
count) and stops it; its output goes to a file that failure messages quote.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

STARTUP_TIMEOUT_S = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ProviderSim:
    """One simulator process; `start` returns once it answers, `stop` (SIGTERM) waits for it to exit."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        self._control = httpx.Client(base_url=url, timeout=5.0)

    @classmethod
    def start(cls, log_path: Path) -> ProviderSim:
        """Start a simulator writing its output to `log_path`, and wait until it answers."""
        port = _free_port()
        code = f"from bookwell_tools.provider_sim import serve; serve('127.0.0.1', {port})"
        with log_path.open("wb") as log:
            process = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
        sim = cls(process, f"http://127.0.0.1:{port}", log_path)
        try:
            sim._wait_until_up()
        except BaseException:
            sim.stop()
            raise
        return sim

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"provider simulator exited with {self.process.returncode}\n{self.output()}")
            try:
                self._control.get("/_control/stats").raise_for_status()
            except httpx.TransportError:
                time.sleep(0.05)
            else:
                return
        raise RuntimeError(f"provider simulator did not answer within {STARTUP_TIMEOUT_S}s\n{self.output()}")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Set some of error_rate, timeout_rate, latency_ms, timeout_s, outage, seed; all faults now in force."""
        in_force: dict[str, Any] = self._json("PUT", "/_control/faults", faults)
        return in_force

    def reset(self) -> None:
        """Forget faults, ledger, idempotency records and the request count."""
        self._json("POST", "/_control/reset")

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        """Every charge and refund the simulator applied, in order."""
        ledger: dict[str, list[dict[str, Any]]] = self._json("GET", "/v1/ledger")
        return ledger

    def request_count(self) -> int:
        """How many charge and refund requests reached the simulator since it started or was reset."""
        count: int = self._json("GET", "/_control/stats")["requests"]
        return count

    def output(self) -> str:
        """The end of the process's output, for failure messages."""
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM the process (SIGKILL if it does not exit within `timeout`) and wait; its exit code."""
        self._control.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        response = self._control.request(method, path, json=body)
        response.raise_for_status()
        return response.json()
