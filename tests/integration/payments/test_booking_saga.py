"""The booking saga in process, on SQLite and PostgreSQL, against the built-in fake provider.

The relay and the jobs run synchronously here (`drive`): the same code the worker runs, without a
broker, so each test reads as the sequence of what happens. Every response is checked against
the contract.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from bookwell.app import create_app
from bookwell.bootstrap import bootstrap
from bookwell.identity import service as identity_service
from bookwell.identity.ports import IdentityUnitOfWork
from bookwell.payments import service as payments_service
from bookwell.payments.domain import RefundTooLarge
from bookwell.payments.ports import PaymentProvider
from bookwell.payments.ports import PaymentsUnitOfWork
from bookwell.platform.db import Database
from bookwell.platform.kernel.money import Money
from tests.api.conftest import Api
from tests.api.conftest import problem
from tests.api.test_bookings import at
from tests.api.test_bookings import key
from tests.api.test_bookings import resource
from tests.integration.conftest import PRICE
from tests.integration.conftest import System
from tests.integration.conftest import eur


def test_a_captured_payment_confirms_the_booking(system: System) -> None:
    booking = system.book("tok_ok")
    assert system.booking(booking["id"])["saga"] is None, "no saga before booking.created is delivered"
    system.drive()
    shown = system.booking(booking["id"])
    assert shown["status"] == "confirmed"
    assert (shown["saga"]["step"], shown["saga"]["outcome"]) == ("charge", "confirmed")
    payment = system.payment_of(booking["id"])
    assert (payment["status"], payment["amount"], payment["provider"]) == ("captured", PRICE, "fake")
    assert payment["saga"]["status"] == "done"
    assert payment["saga"]["outcome"] == "confirmed"
    assert system.steps(booking["id"]) == [("start", "started"), ("charge", "captured")]
    assert system.events().count("payment.captured") == 1
    assert system.events()[-2:] == ["payment.captured", "booking.confirmed"]


def test_a_declined_payment_fails_the_booking_and_frees_the_slot(system: System) -> None:
    booking = system.book("tok_decline")
    system.drive()
    assert system.booking(booking["id"])["status"] == "failed"
    payment = system.payment_of(booking["id"])
    assert (payment["status"], payment["failure_code"]) == ("failed", "card_declined")
    assert payment["saga"]["outcome"] == "failed"
    again = system.api.post(
        "/v1/bookings",
        json={
            "resource_id": booking["resource_id"],
            "start": booking["start"],
            "end": booking["end"],
            "customer": {"name": "Bo", "email": "bo@example.com"},
            "payment": {"token": "tok_ok"},
        },
        headers=key(),
    )
    assert again.status_code == 201, "the slot was released"


@pytest.mark.parametrize("token", ["tok_flaky", "tok_slow"])
def test_an_unanswered_charge_is_retried_with_the_same_key_and_captured_once(system: System, token: str) -> None:
    booking = system.book(token)
    system.drive()
    assert system.booking(booking["id"])["status"] == "confirmed"
    assert system.payment_of(booking["id"])["status"] == "captured"
    steps = system.steps(booking["id"])
    assert steps[1] == ("charge", "retry")
    assert steps[-1] == ("charge", "captured")
    assert system.events().count("payment.captured") == 1


def test_a_capture_that_lands_after_the_hold_lapsed_is_refunded(system: System) -> None:
    booking = system.book("tok_slow")  # the first charge acts, but its answer is lost
    system.step()  # one unanswered try: the saga waits to ask again
    system.lapse_hold(booking["id"])
    system.drive()
    assert system.booking(booking["id"])["status"] == "expired"
    payment = system.payment_of(booking["id"])
    assert (payment["status"], payment["refunded_amount"]) == ("refunded", PRICE)
    assert [r["status"] for r in payment["refunds"]] == ["succeeded"]
    assert payment["saga"]["outcome"] == "refunded"
    assert ("charge", "captured_too_late") in system.steps(booking["id"])
    assert Counter(system.events())["payment.refunded"] == 1


def test_cancelling_a_pending_booking_before_any_charge_voids_the_payment(system: System) -> None:
    booking = system.book("tok_ok")
    system.relay()  # the saga starts; its first step has not run yet
    cancelled = system.api.post(f"/v1/bookings/{booking['id']}/cancel", json={}, headers=key())
    assert cancelled.get_json()["status"] == "cancelled"
    system.drive()
    payment = system.payment_of(booking["id"])
    assert (payment["status"], payment["failure_code"]) == ("failed", "booking_cancelled")
    assert payment["saga"]["outcome"] == "void"
    assert "payment.captured" not in system.events()


@pytest.mark.parametrize(("days", "refunded"), [(3, True), (0, False)])
def test_cancelling_a_confirmed_booking_refunds_as_the_policy_says(system: System, days: int, refunded: bool) -> None:
    # Policy: refunds until 24 h before the start. Three days ahead: all; later today: nothing.
    start_hour = min(23, datetime.now(UTC).hour + 2)
    if days == 0 and start_hour <= datetime.now(UTC).hour:
        pytest.skip("no later hour left today")
    booking = system.book("tok_ok", days=days) if days else _book_today(system, start_hour)
    system.drive()
    assert system.booking(booking["id"])["status"] == "confirmed"
    system.api.post(f"/v1/bookings/{booking['id']}/cancel", json={"reason": "rain"}, headers=key())
    system.drive()
    payment = system.payment_of(booking["id"])
    if refunded:
        assert (payment["status"], payment["refunded_amount"]) == ("refunded", PRICE)
        assert system.steps(booking["id"])[-1] == ("cancel", "refund_requested")
    else:
        assert (payment["status"], payment["refunded_amount"]) == ("captured", eur(0))
        assert system.steps(booking["id"])[-1] == ("cancel", "no_refund_by_policy")


def _book_today(system: System, hour: int) -> dict[str, Any]:
    court = resource(system.api, price_per_slot=PRICE)
    start = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    body = {
        "resource_id": court,
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "customer": {"name": "Ada", "email": "ada@example.com"},
        "payment": {"token": "tok_ok"},
    }
    response = system.api.post("/v1/bookings", json=body, headers=key())
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def test_refunds_over_the_api_stay_within_the_captured_amount(system: System) -> None:
    booking = system.book("tok_ok")
    system.drive()
    payment_id = system.payment_of(booking["id"])["id"]
    problem(
        system.api.post(f"/v1/payments/{payment_id}/refunds", json={"amount": eur(100)}),
        400,
        "idempotency_key_required",
    )
    first = system.api.post(f"/v1/payments/{payment_id}/refunds", json={"amount": eur(1000)}, headers=key())
    assert first.status_code == 201
    assert (first.get_json()["status"], first.get_json()["amount"]) == ("pending", eur(1000))
    problem(
        system.api.post(f"/v1/payments/{payment_id}/refunds", json={"amount": eur(1501)}, headers=key()),
        422,
        "refund_exceeds_captured",
    )
    rest = system.api.post(f"/v1/payments/{payment_id}/refunds", json={}, headers=key())
    assert rest.get_json()["amount"] == eur(1500)
    system.drive()
    payment = system.payment_of(booking["id"])
    assert (payment["status"], payment["refunded_amount"]) == ("refunded", eur(2500))
    assert [r["status"] for r in payment["refunds"]] == ["succeeded", "succeeded"]
    problem(
        system.api.post(f"/v1/payments/{payment_id}/refunds", json={}, headers=key()), 409, "payment_not_refundable"
    )


def test_a_payment_that_was_not_captured_cannot_be_refunded(system: System) -> None:
    booking = system.book("tok_decline")
    system.drive()
    payment_id = system.payment_of(booking["id"])["id"]
    problem(
        system.api.post(f"/v1/payments/{payment_id}/refunds", json={}, headers=key()), 409, "payment_not_refundable"
    )
    problem(system.api.get("/v1/payments/pay_00000000000000000000000000"), 404, "payment_not_found")


def test_a_refund_in_another_currency_than_its_payment_is_422_and_reserves_nothing(system: System) -> None:
    booking = system.book("tok_ok")
    system.drive()
    payment_id = system.payment_of(booking["id"])["id"]
    body = problem(
        system.api.post(
            f"/v1/payments/{payment_id}/refunds", json={"amount": {"amount": 100, "currency": "USD"}}, headers=key()
        ),
        422,
        "currency_mismatch",
    )
    assert body["errors"][0]["pointer"] == "/amount/currency"
    whole = system.api.post(f"/v1/payments/{payment_id}/refunds", json={"amount": PRICE}, headers=key())
    assert whole.status_code == 201, "the mismatched request reserved nothing"


@pytest.mark.postgres
def test_concurrent_refunds_never_exceed_the_captured_amount(postgres_database: Database) -> None:
    settings = postgres_database.settings.model_copy(update={"job_backoff_base_s": 0.01, "job_backoff_cap_s": 0.05})
    container = bootstrap(settings, database=postgres_database)
    app = create_app(settings, container=container)
    _, token = identity_service.create_organization(uow=container.unit_of_work(IdentityUnitOfWork)(), name="Race")
    system = System(Api(app.test_client(), token), container)
    booking = system.book("tok_ok")
    system.drive()
    payment_id = system.payment_of(booking["id"])["id"]
    barrier, outcomes = threading.Barrier(12), []

    def ask() -> None:
        barrier.wait(timeout=30)
        try:
            payments_service.request_refund(
                uow=container.unit_of_work(PaymentsUnitOfWork)(),
                payment_id=payment_id,
                amount=Money(500, "EUR"),
                reason="race",
            )
            outcomes.append("ok")
        except RefundTooLarge:
            outcomes.append("too_large")

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(outcomes) == Counter({"ok": 5, "too_large": 7})
    system.drive()
    payment = system.payment_of(booking["id"])
    assert (payment["status"], payment["refunded_amount"]) == ("refunded", eur(2500))


def test_prefer_wait_answers_with_the_final_status_once_the_saga_settled_it(system: System) -> None:
    court = resource(system.api, price_per_slot=PRICE)
    stop = threading.Event()

    def background() -> None:  # the relay and the worker, meanwhile
        while not stop.is_set():
            system.step()
            time.sleep(0.02)

    worker = threading.Thread(target=background)
    worker.start()
    try:
        body = {
            "resource_id": court,
            "start": at(3, 10),
            "end": at(3, 11),
            "customer": {"name": "Ada", "email": "ada@example.com"},
            "payment": {"token": "tok_ok"},
        }
        waited = system.api.post("/v1/bookings", json=body, headers={"Prefer": "wait=10", **key()})
    finally:
        stop.set()
        worker.join()
    assert waited.status_code == 201
    assert waited.headers["Preference-Applied"] == "wait=10"
    assert waited.get_json()["status"] == "confirmed"
    assert waited.headers["Location"] == f"/v1/bookings/{waited.get_json()['id']}"


def test_prefer_wait_gives_up_after_n_seconds_and_without_it_the_answer_is_immediate(system: System) -> None:
    court = resource(system.api, price_per_slot=PRICE)
    body = {
        "resource_id": court,
        "start": at(3, 10),
        "end": at(3, 11),
        "customer": {"name": "Ada", "email": "ada@example.com"},
        "payment": {"token": "tok_ok"},
    }
    waited = system.api.post("/v1/bookings", json=body, headers={"Prefer": "wait=1, respond-async", **key()})
    assert (waited.status_code, waited.get_json()["status"]) == (201, "pending")  # nobody ran the saga
    assert waited.headers["Preference-Applied"] == "wait=1"
    body["start"], body["end"] = at(3, 12), at(3, 13)
    plain = system.api.post("/v1/bookings", json=body, headers=key())
    assert "Preference-Applied" not in plain.headers
    ignored = system.api.post(
        "/v1/bookings", json=body | {"start": at(3, 14), "end": at(3, 15)}, headers={"Prefer": "wait=soon", **key()}
    )
    assert "Preference-Applied" not in ignored.headers


def test_a_booking_cancelled_while_no_charge_has_reached_the_provider_is_never_charged(system: System) -> None:
    booking = system.book("tok_flaky")  # the first call fails without acting
    system.step()  # the provider refused without acting: nothing to find out
    system.api.post(f"/v1/bookings/{booking['id']}/cancel", json={}, headers=key())
    system.drive()
    payment = system.payment_of(booking["id"])
    assert (payment["status"], payment["failure_code"]) == ("failed", "booking_cancelled")
    assert "payment.captured" not in system.events()


def test_a_compensation_whose_refund_fails_ends_as_refund_failed(system: System) -> None:
    booking = system.book("tok_slow")
    system.step()
    system.lapse_hold(booking["id"])
    container = system.container
    original = container.lookup(PaymentProvider).refund

    def refusing(**kwargs: Any) -> Any:
        return original(**(kwargs | {"charge_reference": "not-a-charge"}))

    container.lookup(PaymentProvider).refund = refusing  # type: ignore[method-assign]
    system.drive()
    payment = system.payment_of(booking["id"])
    assert payment["status"] == "captured", "the capture is kept, and said so"
    assert [r["status"] for r in payment["refunds"]] == ["failed"]
    assert payment["saga"]["outcome"] == "refund_failed"


def test_a_refund_of_null_is_refused(system: System) -> None:
    booking = system.book("tok_ok")
    system.drive()
    payment_id = system.payment_of(booking["id"])["id"]
    problem(
        system.api.post(f"/v1/payments/{payment_id}/refunds", json={"amount": None}, headers=key()),
        422,
        "validation_failed",
    )
    assert system.payment_of(booking["id"])["refunds"] == []
