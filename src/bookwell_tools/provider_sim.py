"""A payment-provider simulator: a card processor's wire format, with faults on demand, in its own process.

It stands in for the real provider in development and in tests (`bookwell provider-sim`), and it
can fail the way a real one fails, so that retries, idempotency keys and the circuit breaker are
exercised against a process across a socket rather than against a mock:
- `POST /v1/charges` and `POST /v1/refunds` take an `Idempotency-Key`; the first call with a key
  stores its answer, a replay with the same body gets that answer again (`Idempotent-Replayed:
  true`) and changes nothing, and the same key with another body is a 409.
- `GET /v1/ledger` lists every effect applied, in order: what tests count double charges from.
- `/_control/faults` sets `outage` (503 at once), `latency_ms` (a pause before handling),
  `error_rate` (503, no effect) and `timeout_rate` (the effect is applied, then the answer waits
  `timeout_s`: the client times out though the provider acted), drawn from `random.Random(seed)`;
  `/_control/reset` forgets everything, `/_control/stats` counts the charge and refund requests.
- Test tokens fail deterministically on the first call of each idempotency key: `tok_flaky` answers
  503 with no effect, `tok_slow` applies the effect and answers after `timeout_s`; `tok_decline` is
  declined, every other `tok_*` succeeds.
State lives in memory behind one lock; the server is werkzeug's threaded one, so a slow answer
never holds up the others.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog
from flask import Flask
from flask import Response
from flask import g
from flask import request
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

log = structlog.get_logger("bookwell_tools.provider_sim")

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_UNAVAILABLE = {"error": "provider_unavailable"}


@dataclass(frozen=True)
class Faults:
    """What the simulator does wrong, set through `PUT /_control/faults`; the defaults do nothing wrong."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: int = 0
    timeout_s: float = 5.0
    outage: bool = False
    seed: int = 0


@dataclass(frozen=True)
class _ChargeRequest:
    """A valid `POST /v1/charges` body."""

    amount: int
    currency: str
    source: str


@dataclass(frozen=True)
class _RefundRequest:
    """A valid `POST /v1/refunds` body."""

    charge: str
    amount: int


@dataclass
class _Charge:
    """A charge as the ledger shows it; `refunded_amount` grows with each successful refund."""

    id: str
    idempotency_key: str
    amount: int
    currency: str
    source: str
    status: str
    refunded_amount: int = 0


@dataclass(frozen=True)
class _Refund:
    """A refund as the ledger shows it, failed ones included."""

    id: str
    idempotency_key: str
    charge: str
    amount: int
    status: str


@dataclass(frozen=True)
class _Answer:
    """One response: its status and body, whether it is a stored one replayed, the fault it shows
    (for the log), and how long to hold it back before sending it."""

    status: int
    body: dict[str, Any]
    replayed: bool = False
    fault: str | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class _Stored:
    """The first answer given under an idempotency key, and what it answered (path and body)."""

    fingerprint: str
    status: int
    body: dict[str, Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_charge(body: Any) -> _ChargeRequest | None:
    """The charge asked for, or None when the body is not exactly {amount > 0, currency, source}."""
    if not isinstance(body, dict) or set(body) != {"amount", "currency", "source"}:
        return None
    amount, currency, source = body["amount"], body["currency"], body["source"]
    if not _is_int(amount) or amount <= 0 or not isinstance(currency, str) or not _CURRENCY.match(currency):
        return None
    if not isinstance(source, str) or not source:
        return None
    return _ChargeRequest(amount, currency, source)


def _parse_refund(body: Any) -> _RefundRequest | None:
    """The refund asked for, or None when the body is not exactly {charge, amount > 0}."""
    if not isinstance(body, dict) or set(body) != {"charge", "amount"}:
        return None
    charge, amount = body["charge"], body["amount"]
    if not isinstance(charge, str) or not charge or not _is_int(amount) or amount <= 0:
        return None
    return _RefundRequest(charge, amount)


def _parse_faults(body: Any, current: Faults) -> Faults | None:
    """`current` with the fields `body` sets, or None when a field is unknown or out of range."""
    if not isinstance(body, dict) or not set(body) <= {field.name for field in dataclasses.fields(Faults)}:
        return None
    valid = {
        "error_rate": lambda v: _is_number(v) and 0 <= v <= 1,
        "timeout_rate": lambda v: _is_number(v) and 0 <= v <= 1,
        "latency_ms": lambda v: _is_int(v) and v >= 0,
        "timeout_s": lambda v: _is_number(v) and v > 0,
        "outage": lambda v: isinstance(v, bool),
        "seed": _is_int,
    }
    if not all(valid[name](value) for name, value in body.items()):
        return None
    return dataclasses.replace(current, **body)


class _State:
    """Everything the simulator knows, behind one lock: faults, ledger, stored answers, request count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._faults = Faults()
        self._random = random.Random(self._faults.seed)  # noqa: S311 - reproducible faults, not secrets
        self._charges: dict[str, _Charge] = {}
        self._refunds: list[_Refund] = []
        self._stored: dict[str, _Stored] = {}
        self._seen_keys: set[str] = set()
        self._requests = 0

    def reset(self) -> None:
        """Back to a fresh start: no faults, no ledger, no stored answers, no requests counted."""
        with self._lock:
            self._clear()

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Apply `faults`; the random draws start again from its seed."""
        with self._lock:
            self._faults = faults
            self._random = random.Random(faults.seed)  # noqa: S311 - reproducible faults, not secrets

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {
                "charges": [dataclasses.asdict(charge) for charge in self._charges.values()],
                "refunds": [dataclasses.asdict(refund) for refund in self._refunds],
            }

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self._requests}

    def call(self, path: str, key: str | None, body: Any) -> _Answer:
        """Answer one `POST /v1/...` call to `path`, applying the faults in force."""
        with self._lock:
            self._requests += 1
            faults = self._faults
        if faults.outage:
            return _Answer(503, _UNAVAILABLE, fault="outage")
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if not key:
            return _Answer(400, {"error": "idempotency_key_required"})
        asked = _parse_charge(body) if path == "/v1/charges" else _parse_refund(body)
        if asked is None:
            return _Answer(400, {"error": "invalid_request"})
        return self._apply(key, path + " " + json.dumps(body, sort_keys=True), asked)

    def _apply(self, key: str, fingerprint: str, asked: _ChargeRequest | _RefundRequest) -> _Answer:
        """Draw the faults, then replay the answer stored under `key` or apply the call and store its answer."""
        source = asked.source if isinstance(asked, _ChargeRequest) else None
        with self._lock:
            faults = self._faults
            first_call = key not in self._seen_keys
            self._seen_keys.add(key)
            # Both draws are taken on every call, so a seed gives the same faults whatever the rates.
            error, timeout = self._random.random() < faults.error_rate, self._random.random() < faults.timeout_rate
            if error:
                return _Answer(503, _UNAVAILABLE, fault="error_rate")
            if first_call and source == "tok_flaky":
                return _Answer(503, _UNAVAILABLE, fault="tok_flaky")
            stored = self._stored.get(key)
            if stored is not None and stored.fingerprint != fingerprint:
                return _Answer(409, {"error": "idempotency_key_reused"})
            if stored is not None:
                answer = _Answer(stored.status, stored.body, replayed=True)
            else:
                result = self._charge(key, asked) if isinstance(asked, _ChargeRequest) else self._refund(key, asked)
                self._stored[key] = _Stored(fingerprint, 201, result)
                answer = _Answer(201, result)
        if timeout:
            return dataclasses.replace(answer, fault="timeout_rate", delay_s=faults.timeout_s)
        if first_call and source == "tok_slow":
            return dataclasses.replace(answer, fault="tok_slow", delay_s=faults.timeout_s)
        return answer

    def _charge(self, key: str, asked: _ChargeRequest) -> dict[str, Any]:
        """Create the charge (the caller holds the lock); `tok_decline` is declined, any other token captured."""
        declined = asked.source == "tok_decline"
        charge = _Charge(
            id="ch_" + secrets.token_hex(12),
            idempotency_key=key,
            amount=asked.amount,
            currency=asked.currency,
            source=asked.source,
            status="declined" if declined else "succeeded",
        )
        self._charges[charge.id] = charge
        return {
            "id": charge.id,
            "status": charge.status,
            "amount": charge.amount,
            "currency": charge.currency,
            "failure_code": "card_declined" if declined else None,
        }

    def _refund(self, key: str, asked: _RefundRequest) -> dict[str, Any]:
        """Create the refund (the caller holds the lock): failed unless the charge is captured and
        still holds `amount` not yet refunded."""
        charge = self._charges.get(asked.charge)
        failure_code = None
        if charge is None or charge.status != "succeeded":
            failure_code = "charge_not_refundable"
        elif asked.amount > charge.amount - charge.refunded_amount:
            failure_code = "amount_exceeds_charge"
        else:
            charge.refunded_amount += asked.amount
        refund = _Refund(
            id="re_" + secrets.token_hex(12),
            idempotency_key=key,
            charge=asked.charge,
            amount=asked.amount,
            status="failed" if failure_code else "succeeded",
        )
        self._refunds.append(refund)
        return {
            "id": refund.id,
            "status": refund.status,
            "charge": refund.charge,
            "amount": refund.amount,
            "failure_code": failure_code,
        }


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def create_simulator() -> Flask:
    """The simulator's app, with a fresh state of its own."""
    app = Flask(__name__)
    state = _State()

    def answer(path: str) -> Response:
        key = request.headers.get("Idempotency-Key")
        g.idempotency_key = key
        outcome = state.call(path, key, request.get_json(silent=True))
        g.fault = outcome.fault
        if outcome.delay_s:
            time.sleep(outcome.delay_s)
        response = _json(outcome.status, outcome.body)
        if outcome.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    @app.post("/v1/charges")
    def charges() -> Response:
        return answer("/v1/charges")

    @app.post("/v1/refunds")
    def refunds() -> Response:
        return answer("/v1/refunds")

    @app.get("/v1/ledger")
    def ledger() -> Response:
        return _json(200, state.ledger())

    @app.get("/_control/faults")
    def get_faults() -> Response:
        return _json(200, dataclasses.asdict(state.faults))

    @app.put("/_control/faults")
    def put_faults() -> Response:
        faults = _parse_faults(request.get_json(silent=True), state.faults)
        if faults is None:
            return _json(400, {"error": "invalid_request"})
        state.set_faults(faults)
        return _json(200, dataclasses.asdict(faults))

    @app.post("/_control/reset")
    def reset() -> Response:
        state.reset()
        return _json(200, dataclasses.asdict(state.faults))

    @app.get("/_control/stats")
    def stats() -> Response:
        return _json(200, state.stats())

    @app.after_request
    def _log_request(response: Response) -> Response:
        log.info(
            "provider_sim_request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            idempotency_key=g.get("idempotency_key"),
            fault=g.get("fault"),
            traceparent=request.headers.get("traceparent"),
        )
        return response

    return app


class _RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its own access line: the app logs each request once, with more in it."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by the app (`provider_sim_request`)."""


def serve(host: str, port: int) -> None:
    """Serve the simulator on `host:port` (0: any free port) until SIGTERM or SIGINT, then return."""
    server = make_server(host, port, create_simulator(), threaded=True, request_handler=_RequestHandler)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("provider_sim_stopping", signal=signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return, which runs on this very thread: ask from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    log.info("provider_sim_listening", host=host, port=server.port)
    try:
        server.serve_forever()  # closes the socket when it returns; answers still being delayed are dropped
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
