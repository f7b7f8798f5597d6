"""The payment provider over HTTP: the card processor's JSON API (as `bookwell_tools.provider_sim` serves it).

A call is up to `retry_attempts` attempts, each carrying the caller's idempotency key unchanged, so
an attempt that timed out after the provider acted is answered, on the next one, with that first
outcome instead of a second charge:
- transient failures (timeouts, refused or dropped connections, 5xx, 408, 429) are retried after
  an exponential backoff with full jitter; once the attempts run out, ProviderUnavailable;
- every attempt goes through a circuit breaker: `breaker_fail_max` transient failures in a row open
  it, and for `breaker_reset_s` calls fail at once with ProviderUnavailable (`retry_after_s` = the
  time left) without a request leaving; then one trial call closes it again, or opens it again;
- any other refusal (400, 409: a malformed request, a key reused with another body) is our bug:
  ProviderRejected, never retried, and not held against the provider by the breaker.
A declined charge or a failed refund is a final answer, not an error.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pybreaker
import structlog
from tenacity import RetryCallState
from tenacity import Retrying
from tenacity import retry_if_exception_type
from tenacity import stop_after_attempt

from bookwell.payments.ports import ChargeResult
from bookwell.payments.ports import ProviderUnavailable
from bookwell.payments.ports import RefundResult
from bookwell.platform.kernel.context import current
from bookwell.platform.kernel.retry import backoff_delay
from bookwell.platform.observability.metrics import observe_breaker
from bookwell.platform.observability.metrics import observe_call

log = structlog.get_logger("bookwell.payments.http")
DEPENDENCY = "payment_provider"  # the label of its calls' and breaker's metrics

_TRANSIENT_STATUSES = frozenset({408, 429})
_FINAL_STATUSES = {"charge": frozenset({"succeeded", "declined"}), "refund": frozenset({"succeeded", "failed"})}


class ProviderRejected(Exception):
    """The provider refused the request itself (a 4xx such as 400 or 409): a bug on our side.

    Nothing was done, and asking again would be refused again: it is never retried, and it does
    not count against the provider's health in the circuit breaker.
    """

    def __init__(self, status: int, error: str | None) -> None:
        super().__init__(f"payment provider rejected the request: HTTP {status} ({error or 'no error code'})")
        self.status = status
        self.error = error


class _TransientStatus(Exception):
    """An answer that says "not now" (5xx, 408, 429): no final outcome, worth another attempt."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _BreakerWatch(pybreaker.CircuitBreakerListener):
    """Logs the breaker's state changes and notes when it last opened (for `retry_after_s`)."""

    def __init__(self) -> None:
        self.opened_at: float | None = None

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self.opened_at = time.monotonic()
        observe_breaker(DEPENDENCY, new_state.name)
        emit = log.warning if new_state.name == pybreaker.STATE_OPEN else log.info
        emit(
            "payment_provider_breaker",
            provider=HttpPaymentProvider.name,
            old_state=old_state.name if old_state else None,
            new_state=new_state.name,
            reset_s=cb.reset_timeout,
        )


class HttpPaymentProvider:
    """PaymentProvider over the provider's HTTP API; one instance is shared by every thread of a process."""

    name = "http"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 2.0,
        retry_attempts: int = 3,
        retry_base_s: float = 0.2,
        retry_cap_s: float = 2.0,
        breaker_fail_max: int = 5,
        breaker_reset_s: float = 10.0,
    ) -> None:
        # One limit for connecting, sending, reading and waiting for a pooled connection alike.
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout_s))
        self._retry_attempts = retry_attempts
        self._retry_base_s, self._retry_cap_s = retry_base_s, retry_cap_s
        self._watch = _BreakerWatch()
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=breaker_fail_max,
            reset_timeout=breaker_reset_s,
            exclude=[ProviderRejected],
            listeners=[self._watch],
            name="payments.http",
        )
        observe_breaker(DEPENDENCY, self._breaker.current_state)

    @property
    def breaker_state(self) -> str:
        """The breaker's state: "closed", "open" or "half-open" (an open one reads "open" until a call finds it due)."""
        return self._breaker.current_state

    def charge(self, *, idempotency_key: str, amount: int, currency: str, token: str) -> ChargeResult:
        """Charge the card behind `token`; only the token's first 8 characters are logged."""
        answer = self._call(
            "charge",
            "/v1/charges",
            idempotency_key,
            {"amount": amount, "currency": currency, "source": token},
            {"amount": amount, "currency": currency, "source": token[:8]},
        )
        return ChargeResult(answer["status"] == "succeeded", answer["id"], answer["failure_code"])

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int, currency: str) -> RefundResult:
        """Refund `amount` of the charge; the provider knows the charge's currency, so it is only logged."""
        answer = self._call(
            "refund",
            "/v1/refunds",
            idempotency_key,
            {"charge": charge_reference, "amount": amount},
            {"charge": charge_reference, "amount": amount, "currency": currency},
        )
        return RefundResult(answer["status"] == "succeeded", answer["id"], answer["failure_code"])

    def close(self) -> None:
        """Close the HTTP client's connections."""
        self._client.close()

    def _call(
        self, operation: str, path: str, idempotency_key: str, payload: dict[str, Any], context: dict[str, Any]
    ) -> dict[str, Any]:
        """The provider's final answer to `payload`, after retries; logs one line with its outcome and latency."""
        call_log = log.bind(provider=self.name, operation=operation, idempotency_key=idempotency_key, **context)
        retrying = Retrying(
            stop=stop_after_attempt(self._retry_attempts),
            wait=lambda state: backoff_delay(state.attempt_number, self._retry_base_s, self._retry_cap_s),
            retry=retry_if_exception_type((httpx.TransportError, _TransientStatus)),
            before_sleep=lambda state: _log_retry(call_log, state),
            reraise=True,
        )
        started = time.monotonic()
        sent = False  # whether any attempt may have reached the provider

        def attempt() -> httpx.Response:
            nonlocal sent
            try:
                return self._attempt(path, idempotency_key, payload)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, pybreaker.CircuitBreakerError):
                raise  # never left this process, or never got a connection
            except BaseException:
                sent = True
                raise

        def finished(outcome: str, **fields: Any) -> None:
            attempts = retrying.statistics.get("attempt_number", 0)
            seconds = time.monotonic() - started
            latency_ms = round(seconds * 1000, 1)
            observe_call(DEPENDENCY, outcome, seconds)
            emit = call_log.info if outcome in _FINAL_STATUSES[operation] else call_log.warning
            emit("payment_provider_call", outcome=outcome, attempts=attempts, latency_ms=latency_ms, **fields)

        try:
            response = retrying(attempt)
        except pybreaker.CircuitBreakerError:
            retry_after_s = self._breaker_time_left()
            finished("breaker_open", retry_after_s=round(retry_after_s, 3))
            raise ProviderUnavailable(
                "payment provider circuit breaker is open", retry_after_s=retry_after_s, maybe_acted=sent
            ) from None
        except ProviderRejected as error:
            finished("rejected", status=error.status, error=error.error)
            raise
        except (httpx.RequestError, _TransientStatus) as error:
            reason = f"{type(error).__name__}: {error}"
            finished("unavailable", reason=reason)
            raise ProviderUnavailable(
                f"payment provider unavailable after retries ({reason})", maybe_acted=sent
            ) from error
        answer = _final_answer(response, _FINAL_STATUSES[operation])
        if answer is None:
            finished("unreadable", status=response.status_code)
            # It said yes to something, but not in a form we can read: the outcome is unknown.
            raise ProviderUnavailable(f"payment provider gave an unreadable answer (HTTP {response.status_code})")
        finished(answer["status"], reference=answer["id"], failure_code=answer["failure_code"])
        return answer

    def _attempt(self, path: str, idempotency_key: str, payload: dict[str, Any]) -> httpx.Response:
        """One request through the breaker. `calling()` holds the breaker's lock only to check its state,
        not for the request (its `call()` would hold it throughout, one request at a time per process)."""
        with self._breaker.calling():
            headers = {"Idempotency-Key": idempotency_key}
            traceparent = current().traceparent
            if traceparent:
                headers["traceparent"] = traceparent  # the provider's logs join the request's trace
            response = self._client.post(path, json=payload, headers=headers)
            status = response.status_code
            if status >= 500 or status in _TRANSIENT_STATUSES:
                raise _TransientStatus(status)
            if not response.is_success:
                raise ProviderRejected(status, _error_code(response))
        return response

    def _breaker_time_left(self) -> float:
        """Seconds until the open breaker lets a trial call through."""
        if self._watch.opened_at is None:
            return self._breaker.reset_timeout
        return max(0.0, self._breaker.reset_timeout - (time.monotonic() - self._watch.opened_at))


def _log_retry(call_log: Any, state: RetryCallState) -> None:
    """One line per failed attempt that is about to be tried again."""
    error = state.outcome.exception() if state.outcome else None
    call_log.warning(
        "payment_provider_retry",
        attempt=state.attempt_number,
        error=f"{type(error).__name__}: {error}",
        retry_in_s=round(state.upcoming_sleep, 3),
    )


def _final_answer(response: httpx.Response, statuses: frozenset[str]) -> dict[str, Any] | None:
    """The answer's body when it is a charge or refund in one of `statuses`, else None."""
    try:
        answer = response.json()
    except ValueError:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str) or answer.get("status") not in statuses:
        return None
    if not isinstance(answer.get("failure_code"), str | None):
        return None
    return answer


def _error_code(response: httpx.Response) -> str | None:
    """The `error` of a refusal's JSON body, when it has one."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None
