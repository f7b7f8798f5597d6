"""The built-in payment provider of the embedded default: in process, deterministic, no network.

It behaves as the test tokens of docs/design/api.md say, and, like a real provider, answers a repeated
idempotency key with its first outcome:
- `tok_ok`: captured; `tok_decline`: declined (`card_declined`); any other token: declined
  (`unknown_token`);
- `tok_flaky`: the first call of a key fails without acting (ProviderUnavailable), later ones capture;
- `tok_slow`: the first call of a key captures, then "times out" (ProviderUnavailable): the case
  where asking again with the same key is what finds the charge.
Its memory is its process's: a restarted worker's fake has forgotten earlier keys.
"""

from __future__ import annotations

import itertools
import threading

from bookwell.payments.ports import ChargeResult
from bookwell.payments.ports import ProviderUnavailable
from bookwell.payments.ports import RefundResult


class FakePaymentProvider:
    name = "fake"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._charges: dict[str, ChargeResult] = {}  # idempotency key -> first outcome
        self._amounts: dict[str, int] = {}  # charge reference -> amount left to refund
        self._refunds: dict[str, RefundResult] = {}
        self._first_calls: set[str] = set()

    def charge(self, *, idempotency_key: str, amount: int, currency: str, token: str) -> ChargeResult:
        with self._lock:
            first_call = idempotency_key not in self._first_calls
            self._first_calls.add(idempotency_key)
            if token == "tok_flaky" and first_call:  # noqa: S105 - a public test token
                raise ProviderUnavailable("fake provider: transient failure (tok_flaky)", maybe_acted=False)
            if idempotency_key not in self._charges:
                reference = f"fake_ch_{next(self._ids)}"
                if token in ("tok_ok", "tok_flaky", "tok_slow"):
                    self._charges[idempotency_key] = ChargeResult(captured=True, reference=reference)
                    self._amounts[reference] = amount
                else:
                    code = "card_declined" if token == "tok_decline" else "unknown_token"  # noqa: S105
                    self._charges[idempotency_key] = ChargeResult(False, reference, code)
            if token == "tok_slow" and first_call:  # noqa: S105 - a public test token
                raise ProviderUnavailable("fake provider: timed out after acting (tok_slow)")
            return self._charges[idempotency_key]

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int, currency: str) -> RefundResult:
        with self._lock:
            if idempotency_key not in self._refunds:
                left = self._amounts.get(charge_reference)
                if left is None:
                    result = RefundResult(False, None, "charge_not_refundable")
                elif amount > left:
                    result = RefundResult(False, None, "amount_exceeds_charge")
                else:
                    self._amounts[charge_reference] = left - amount
                    result = RefundResult(True, f"fake_re_{next(self._ids)}")
                self._refunds[idempotency_key] = result
            return self._refunds[idempotency_key]
