"""Webhook signatures against the reference verifier, the URL policy, selectors and the retry schedule."""

from __future__ import annotations

import base64
import ipaddress
import random
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from bookwell.notifications import domain
from bookwell.notifications.adapters.http import UrlPolicy
from bookwell.notifications.adapters.http import WebhookSender
from bookwell.notifications.adapters.http import retry_after
from bookwell.notifications.domain import RETRY_SCHEDULE_S
from bookwell.notifications.domain import Attempt
from bookwell.notifications.domain import DeliveryStatus
from bookwell.notifications.domain import UrlForbidden
from bookwell.notifications.domain import UrlUnresolvable
from bookwell.platform.kernel.errors import InvalidInput
from bookwell.settings import Settings
from bookwell.settings import parse_delays

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KEY = "a-settings-secret-key-of-at-least-32-characters"
BODY = '{"id":"evt_1","type":"booking.confirmed","created_at":"2026-12-01T09:00:00Z","data":{"object":{"id":"bkg_1"}}}'


def test_a_secret_is_whsec_and_32_bytes_of_base64_derived_from_its_salt_alone() -> None:
    secret = domain.derive_secret(KEY, "salt-1")
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert domain.derive_secret(KEY, "salt-1") == secret
    assert domain.derive_secret(KEY, "salt-2") != secret
    assert domain.derive_secret(KEY + "-other", "salt-1") != secret


def test_a_signed_delivery_verifies_with_the_reference_library_and_with_ours() -> None:
    secret = domain.derive_secret(KEY, "salt")
    stamp = int(time.time())
    headers = domain.headers([secret], "evt_1", stamp, BODY)
    assert Webhook(secret).verify(BODY, headers)["id"] == "evt_1"
    assert domain.verify(secret, headers, BODY, time.time()) == "evt_1"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("body", "tampered"),
        ("timestamp", "stale"),
        ("secret", "wrong secret"),
    ],
)
def test_tampered_stale_or_foreign_deliveries_are_refused_by_both(change: str, why: str) -> None:
    secret = domain.derive_secret(KEY, "salt")
    stamp = int(time.time()) - (301 if change == "timestamp" else 0)
    headers = domain.headers([secret], "evt_1", stamp, BODY)
    body = BODY.replace("bkg_1", "bkg_2") if change == "body" else BODY
    checking = domain.derive_secret(KEY, "another-salt") if change == "secret" else secret
    with pytest.raises(WebhookVerificationError):
        Webhook(checking).verify(body, headers)
    with pytest.raises(domain.InvalidSignature):
        domain.verify(checking, headers, body, time.time())


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = domain.derive_secret(KEY, "old"), domain.derive_secret(KEY, "new")
    headers = domain.headers([new, old], "evt_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(BODY, headers)
        domain.verify(secret, headers, BODY, time.time())


def test_the_previous_secret_signs_only_during_its_grace_period() -> None:
    endpoint = _endpoint()
    first = endpoint.secret_salt
    endpoint.rotate_secret(NOW, timedelta(hours=24))
    assert endpoint.salts(NOW + timedelta(hours=23)) == (endpoint.secret_salt, first)
    assert endpoint.salts(NOW + timedelta(hours=24)) == (endpoint.secret_salt,)
    second = endpoint.secret_salt
    endpoint.rotate_secret(NOW + timedelta(hours=1), timedelta(hours=24))
    assert endpoint.salts(NOW + timedelta(hours=2)) == (endpoint.secret_salt, second)  # the first stopped at once


def test_selectors_take_exact_types_families_and_everything_and_nothing_unknown() -> None:
    assert domain.expand(["booking.*"]) == {t for t in domain.EVENT_TYPES if t.startswith("booking.")}
    assert domain.expand(["*"]) == domain.EVENT_TYPES
    assert domain.expand(["payment.refunded", "resource.*"]) == {
        "payment.refunded",
        "resource.created",
        "resource.updated",
        "resource.deleted",
    }
    with pytest.raises(InvalidInput):
        domain.expand(["booking.reticulated"])
    endpoint = _endpoint(event_types=("payment.refunded",))
    assert endpoint.takes("payment.refunded")
    assert not endpoint.takes("payment.captured")
    assert endpoint.takes(domain.TEST_EVENT)


def test_each_retry_falls_in_its_jittered_window_and_the_schedule_ends_dead() -> None:
    rng = random.Random(7)
    delivery = _delivery()
    started = NOW
    waits = []
    while delivery.status is DeliveryStatus.PENDING:
        delivery = delivery.after(Attempt(delivery.attempts + 1, started, 500, 12, None, "no"), rng=rng)
        if delivery.next_attempt_at is not None:
            waits.append((delivery.next_attempt_at - started).total_seconds())
            started = delivery.next_attempt_at
    assert delivery.status is DeliveryStatus.DEAD
    assert delivery.attempts == len(domain.RETRY_SCHEDULE_S) + 1 == 10
    for wait, base in zip(waits, domain.RETRY_SCHEDULE_S, strict=True):
        assert base * 0.9 <= wait <= base * 1.1
    assert 2.7 * 86400 < sum(waits) < 3.3 * 86400  # about three days


def test_success_ends_it_a_410_kills_it_and_retry_after_is_honoured() -> None:
    delivery = _delivery()
    assert delivery.after(Attempt(1, NOW, 204, 3, None, "")).status is DeliveryStatus.SUCCEEDED
    assert delivery.after(Attempt(1, NOW, 410, 3, None, "")).status is DeliveryStatus.DEAD
    later = delivery.after(Attempt(1, NOW, 429, 3, None, "", retry_after_s=120.0))
    assert later.next_attempt_at == NOW + timedelta(seconds=120)
    capped = delivery.after(Attempt(1, NOW, 503, 3, None, "", retry_after_s=10 * 86400.0))
    assert capped.next_attempt_at == NOW + timedelta(days=1)
    redirected = delivery.after(Attempt(1, NOW, 302, 3, None, ""))
    assert redirected.status is DeliveryStatus.PENDING  # a redirect is not followed, and not success
    again = redirected.again(NOW + timedelta(hours=1))
    assert (again.scheduled_attempts, again.next_attempt_at, again.attempts) == (0, NOW + timedelta(hours=1), 1)


def _resolving(table: dict[str, list[str]]) -> UrlPolicy:
    def resolver(host: str, _port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address(a) for a in table.get(host, [])]

    return UrlPolicy([], http_allowed=False, resolver=resolver)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://10.0.0.1/hook",
        "https://172.16.5.4/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::127.0.0.1]/hook",  # IPv4-compatible, deprecated
        "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "https://[2002:7f00:1::1]/hook",  # 6to4
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
        "https://[fec0::1]/hook",  # site-local
        "https://[fe80::1]/hook",
        "https://198.18.0.1/hook",  # benchmarking
        "https://192.0.2.10/hook",  # documentation
        "https://[fd00:ec2::254]/hook",
        "https://224.0.0.1/hook",
        "https://100.64.0.1/hook",
        "https://localhost.example/hook",  # a name that resolves to loopback
        "https://mixed.example/hook",  # one public address and one private one
    ],
)
def test_private_loopback_link_local_metadata_and_multicast_targets_are_refused(url: str) -> None:
    policy = _resolving({"localhost.example": ["127.0.0.1"], "mixed.example": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(UrlForbidden) as refused:
        policy.check(url, unresolved_ok=True)
    assert refused.value.code == "webhook_url_forbidden"


def test_a_nat64_address_of_a_public_one_is_public_and_the_refusal_names_no_address() -> None:
    policy = _resolving({"inside.example": ["10.9.8.7"]})
    assert str(policy.check("https://[64:ff9b::5db8:d822]/", unresolved_ok=False).address) == "64:ff9b::5db8:d822"
    with pytest.raises(UrlForbidden) as refused:
        policy.check("https://inside.example/", unresolved_ok=False)
    assert "10.9.8.7" not in refused.value.detail


def test_an_attempt_re_resolves_and_is_refused_once_the_name_points_inside() -> None:
    table = {"partner.example": ["93.184.216.34"]}
    sender = WebhookSender(_resolving(table), connect_timeout_s=0.5, timeout_s=0.5)
    table["partner.example"] = ["127.0.0.1"]  # rebound after it was saved
    attempt = sender.send("https://partner.example/hook", {}, "{}", now=NOW)
    sender.close()
    assert (attempt.status_code, attempt.error) == (None, "url_forbidden")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("", None),
        ("-5", None),
        ("\u0661\u0662", None),  # digits, but not ASCII ones
        ("soon", None),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),  # a date past: now
        ("Thu, 01 Jan 1970 00:00:00 -0000", 0.0),
    ],
)
def test_retry_after_is_seconds_or_a_date_and_anything_else_is_ignored(value: str, expected: float | None) -> None:
    response = httpx.Response(503, headers={"Retry-After": value.encode()} if value else {})
    assert retry_after(response) == expected


def test_public_https_passes_http_and_credentials_do_not_and_unresolved_names_wait() -> None:
    policy = _resolving({"partner.example": ["93.184.216.34"]})
    target = policy.check("https://partner.example:8443/hooks", unresolved_ok=False)
    assert (target.host, target.port, str(target.address)) == ("partner.example", 8443, "93.184.216.34")
    for refused in ("http://partner.example/", "ftp://partner.example/", "https://user:pw@partner.example/"):
        with pytest.raises(UrlForbidden):
            policy.check(refused, unresolved_ok=True)
    assert policy.check("https://not-yet.example/", unresolved_ok=True).address is None
    with pytest.raises(UrlUnresolvable):
        policy.check("https://not-yet.example/", unresolved_ok=False)


def test_the_allow_list_admits_its_networks_over_http_too_and_nothing_else() -> None:
    policy = UrlPolicy([ipaddress.ip_network("127.0.0.0/8")], http_allowed=False)
    assert str(policy.check("http://127.0.0.1:9000/", unresolved_ok=False).address) == "127.0.0.1"
    assert policy.check("http://[::ffff:127.0.0.1]:9000/", unresolved_ok=False).address is not None
    with pytest.raises(UrlForbidden):
        policy.check("http://10.0.0.1/", unresolved_ok=True)


def test_a_url_longer_than_the_column_once_normalised_is_refused() -> None:
    with pytest.raises(InvalidInput):
        domain.create_endpoint(
            organization_id="org_1",
            url="https://x/" + "a" * 2048,
            event_types=["*"],
            description=None,
            active=True,
            now=NOW,
        )


def _endpoint(event_types: tuple[str, ...] = ("*",)) -> domain.Endpoint:
    return domain.create_endpoint(
        organization_id="org_1",
        url="https://partner.example/",
        event_types=event_types,
        description=None,
        active=True,
        now=NOW,
    )


def _delivery() -> domain.Delivery:
    return domain.new_delivery(
        endpoint=_endpoint(), event_id="evt_1", event_type="booking.confirmed", body=BODY, now=NOW
    )


def test_only_enabling_a_disabled_endpoint_starts_its_days_of_failure_afresh() -> None:
    endpoint = domain.create_endpoint(
        organization_id="org_1",
        url="https://partner.example/",
        event_types=["*"],
        description=None,
        active=True,
        now=NOW,
    )
    endpoint.failing_since = NOW
    endpoint.update({"active": True, "description": "CRM"}, NOW)  # already active: still failing since NOW
    assert endpoint.failing_since == NOW
    endpoint.disable(domain.DisabledReason.FAILING, NOW)
    endpoint.update({"active": True}, NOW)
    assert (endpoint.active, endpoint.disabled_reason, endpoint.failing_since) == (True, None, None)
    with pytest.raises(InvalidInput):
        endpoint.update({}, NOW)


@pytest.mark.parametrize("schedule", ["", "5,,10", "5,-1", "0", "inf", "nan", "1e20", ",".join(["1"] * 31)])
def test_a_retry_schedule_setting_that_could_not_be_kept_is_refused_at_start(schedule: str) -> None:
    with pytest.raises(ValueError, match="BOOKWELL_WEBHOOK_RETRY_SCHEDULE_S"):
        Settings(webhook_retry_schedule_s=schedule)
    assert Settings(webhook_retry_schedule_s="0.5, 1,2").webhook_retry_schedule_s == "0.5, 1,2"


def test_the_retry_schedule_setting_defaults_to_the_domain_schedule() -> None:
    assert parse_delays(Settings().webhook_retry_schedule_s) == RETRY_SCHEDULE_S
