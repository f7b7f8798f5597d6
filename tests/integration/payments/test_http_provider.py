"""HttpPaymentProvider against the provider simulator as a real process: retries, idempotency keys and
the circuit breaker, checked against what the simulator's ledger and request count say happened."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bookwell.payments.adapters.http import HttpPaymentProvider
from bookwell.payments.adapters.http import ProviderRejected
from bookwell.payments.ports import ChargeResult
from bookwell.payments.ports import ProviderUnavailable
from bookwell.payments.ports import RefundResult
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.context import bound
from tests.support.provider_sim import ProviderSim


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderSim]:
    process = ProviderSim.start(tmp_path_factory.mktemp("provider-sim") / "provider-sim.log")
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh_sim(sim: ProviderSim) -> None:
    sim.reset()


@pytest.fixture
def provider(sim: ProviderSim) -> Iterator[HttpPaymentProvider]:
    """Small timeouts and backoff, so that every test runs in about a second at most."""
    client = HttpPaymentProvider(
        sim.url, timeout_s=0.5, retry_attempts=3, retry_base_s=0.02, retry_cap_s=0.1, breaker_fail_max=3
    )
    yield client
    client.close()


def _key() -> str:
    return f"test-{uuid.uuid4().hex}"


def _charge(
    provider: HttpPaymentProvider,
    key: str,
    token: str = "tok_ok",  # noqa: S107 - a public test token
    amount: int = 1500,
) -> ChargeResult:
    return provider.charge(idempotency_key=key, amount=amount, currency="EUR", token=token)


def _refund(provider: HttpPaymentProvider, key: str, reference: str, amount: int) -> RefundResult:
    return provider.refund(idempotency_key=key, charge_reference=reference, amount=amount, currency="EUR")


def test_a_charge_replayed_under_its_key_is_one_charge(sim: ProviderSim, provider: HttpPaymentProvider) -> None:
    key = _key()

    first = _charge(provider, key)
    again = _charge(provider, key)

    assert first.captured
    assert first.reference is not None
    assert first.reference.startswith("ch_")
    assert first.failure_code is None
    assert again == first
    [charge] = sim.ledger()["charges"]
    assert (charge["id"], charge["idempotency_key"], charge["amount"], charge["currency"], charge["status"]) == (
        first.reference,
        key,
        1500,
        "EUR",
        "succeeded",
    )


def test_a_call_carries_the_request_context_trace_to_the_provider(
    sim: ProviderSim, provider: HttpPaymentProvider
) -> None:
    traceparent = "00-" + uuid.uuid4().hex + "-" + uuid.uuid4().hex[:16] + "-01"
    with bound(RequestContext(request_id="req-trace", traceparent=traceparent)):
        assert _charge(provider, _key()).captured
    deadline = time.monotonic() + 10
    while traceparent not in sim.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # the simulator logs a request once it has answered it
    [line] = [line for line in sim.log_path.read_text().splitlines() if traceparent in line]
    assert "provider_sim_request" in line
    assert "path=/v1/charges" in line
    assert f"traceparent={traceparent}" in line.split()


def test_the_simulator_replays_a_key_with_its_first_answer(sim: ProviderSim) -> None:
    body = {"amount": 700, "currency": "EUR", "source": "tok_ok"}
    with httpx.Client(base_url=sim.url) as client:
        first = client.post("/v1/charges", json=body, headers={"Idempotency-Key": "k1"})
        again = client.post("/v1/charges", json=body, headers={"Idempotency-Key": "k1"})
        reused = client.post("/v1/charges", json=body | {"amount": 701}, headers={"Idempotency-Key": "k1"})
        keyless = client.post("/v1/charges", json=body)
        invalid = client.post("/v1/charges", json=body | {"currency": "eur"}, headers={"Idempotency-Key": "k2"})
        bad_faults = client.put("/_control/faults", json={"error_rate": 2})

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert (again.status_code, again.json(), again.headers["Idempotent-Replayed"]) == (201, first.json(), "true")
    assert (reused.status_code, reused.json()) == (409, {"error": "idempotency_key_reused"})
    assert (keyless.status_code, keyless.json()) == (400, {"error": "idempotency_key_required"})
    assert (invalid.status_code, invalid.json()) == (400, {"error": "invalid_request"})
    assert (bad_faults.status_code, bad_faults.json()) == (400, {"error": "invalid_request"})
    assert len(sim.ledger()["charges"]) == 1


def test_a_declined_card_is_a_final_answer_not_an_error(sim: ProviderSim, provider: HttpPaymentProvider) -> None:
    result = _charge(provider, _key(), "tok_decline")

    assert not result.captured
    assert result.failure_code == "card_declined"
    [charge] = sim.ledger()["charges"]
    assert (charge["id"], charge["status"]) == (result.reference, "declined")
    assert sim.request_count() == 1


def test_a_flaky_first_attempt_is_retried_into_one_charge(sim: ProviderSim, provider: HttpPaymentProvider) -> None:
    result = _charge(provider, _key(), "tok_flaky")

    assert result.captured
    assert sim.request_count() == 2
    [charge] = sim.ledger()["charges"]
    assert charge["id"] == result.reference


def test_a_timed_out_attempt_that_charged_is_found_on_retry(sim: ProviderSim, provider: HttpPaymentProvider) -> None:
    sim.set_faults(timeout_s=2)  # longer than the provider's 0.5 s: the first attempt times out after charging
    key = _key()

    result = _charge(provider, key, "tok_slow")

    assert result.captured
    assert sim.request_count() == 2
    [charge] = sim.ledger()["charges"]
    assert (charge["id"], charge["idempotency_key"]) == (result.reference, key)


def test_refunds_up_to_the_charge_and_not_beyond(sim: ProviderSim, provider: HttpPaymentProvider) -> None:
    charge = _charge(provider, _key(), amount=1000)
    declined = _charge(provider, _key(), "tok_decline", amount=1000)
    assert charge.reference is not None
    assert declined.reference is not None
    partial_key = _key()

    partial = _refund(provider, partial_key, charge.reference, 400)
    replayed = _refund(provider, partial_key, charge.reference, 400)
    over = _refund(provider, _key(), charge.reference, 601)
    rest = _refund(provider, _key(), charge.reference, 600)
    beyond = _refund(provider, _key(), charge.reference, 1)
    of_declined = _refund(provider, _key(), declined.reference, 1)
    of_unknown = _refund(provider, _key(), "ch_unknown", 1)

    assert partial.succeeded
    assert partial.reference is not None
    assert partial.reference.startswith("re_")
    assert replayed == partial
    assert (over.succeeded, over.failure_code) == (False, "amount_exceeds_charge")
    assert (rest.succeeded, rest.failure_code) == (True, None)
    assert (beyond.succeeded, beyond.failure_code) == (False, "amount_exceeds_charge")
    assert (of_declined.succeeded, of_declined.failure_code) == (False, "charge_not_refundable")
    assert (of_unknown.succeeded, of_unknown.failure_code) == (False, "charge_not_refundable")
    ledger = sim.ledger()
    assert [c["refunded_amount"] for c in ledger["charges"]] == [1000, 0]
    assert [(r["charge"], r["amount"], r["status"]) for r in ledger["refunds"]] == [
        (charge.reference, 400, "succeeded"),
        (charge.reference, 601, "failed"),
        (charge.reference, 600, "succeeded"),
        (charge.reference, 1, "failed"),
        (declined.reference, 1, "failed"),
        ("ch_unknown", 1, "failed"),
    ]


def test_an_outage_opens_the_breaker_which_then_fails_fast_and_recovers(sim: ProviderSim) -> None:
    provider = HttpPaymentProvider(
        sim.url,
        timeout_s=0.5,
        retry_attempts=2,
        retry_base_s=0.02,
        retry_cap_s=0.1,
        breaker_fail_max=3,
        breaker_reset_s=2.0,
    )
    sim.set_faults(outage=True)
    try:
        with pytest.raises(ProviderUnavailable) as exhausted:
            _charge(provider, _key())
        assert exhausted.value.retry_after_s is None
        assert (provider.breaker_state, sim.request_count()) == ("closed", 2)

        with pytest.raises(ProviderUnavailable) as tripped:  # its first attempt is the third failure in a row
            _charge(provider, _key())
        assert (provider.breaker_state, sim.request_count()) == ("open", 3)
        assert tripped.value.retry_after_s is not None

        with pytest.raises(ProviderUnavailable) as fast:
            _charge(provider, _key())
        assert (provider.breaker_state, sim.request_count()) == ("open", 3)  # nothing left the process
        assert fast.value.retry_after_s is not None
        assert 0 < fast.value.retry_after_s <= 2.0
        assert sim.ledger()["charges"] == []

        sim.set_faults(outage=False)
        time.sleep(fast.value.retry_after_s + 0.05)
        result = _charge(provider, _key())
        assert result.captured
        assert (provider.breaker_state, sim.request_count()) == ("closed", 4)
    finally:
        provider.close()


def test_a_key_reused_with_another_body_is_rejected_at_once(sim: ProviderSim, provider: HttpPaymentProvider) -> None:
    key = _key()
    first = _charge(provider, key, amount=1000)

    for _ in range(4):  # more than breaker_fail_max: refusals do not count against the provider
        with pytest.raises(ProviderRejected) as rejected:
            _charge(provider, key, amount=2000)
        assert (rejected.value.status, rejected.value.error) == (409, "idempotency_key_reused")

    assert sim.request_count() == 5  # one each: never retried
    assert provider.breaker_state == "closed"
    assert _charge(provider, key, amount=1000) == first


def test_a_refused_connection_is_unavailable_after_retries() -> None:
    with socket.socket() as bound:  # bound, never listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        provider = HttpPaymentProvider(
            f"http://127.0.0.1:{bound.getsockname()[1]}", timeout_s=0.5, retry_attempts=2, retry_base_s=0.02
        )
        try:
            with pytest.raises(ProviderUnavailable, match="ConnectError") as unavailable:
                _charge(provider, _key())
        finally:
            provider.close()

    assert unavailable.value.retry_after_s is None
    assert provider.breaker_state == "closed"


def test_the_simulator_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    own = ProviderSim.start(tmp_path / "provider-sim.log")

    assert own.stop() == 0
    assert "provider_sim_stopping" in own.output()
