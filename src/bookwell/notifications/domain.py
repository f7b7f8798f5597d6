"""Webhook endpoints and their deliveries: which events an endpoint takes, how deliveries are
signed, and the schedule a failing delivery is retried on.

No I/O here: the URL's addresses are checked by `adapters/http.py`.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import random
import secrets
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from typing import Any

from bookwell.platform.kernel.errors import Conflict
from bookwell.platform.kernel.errors import FieldError
from bookwell.platform.kernel.errors import InvalidInput
from bookwell.platform.kernel.errors import NotFound
from bookwell.platform.kernel.errors import PreconditionFailed
from bookwell.platform.kernel.ids import new_id

# Event schema v1's types (contract/events/v1.yaml); a selector names one or a family (`booking.*`).
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "resource.created",
        "resource.updated",
        "resource.deleted",
        "booking.created",
        "booking.confirmed",
        "booking.failed",
        "booking.expired",
        "booking.cancelled",
        "payment.captured",
        "payment.failed",
        "payment.refunded",
        "webhook_endpoint.disabled",
    }
)
TEST_EVENT = "webhook.test"  # sent by `POST .../test` to one endpoint; never in the event log

# After the first attempt fails, the next ones wait these long (each ±10 %): about three days in all
# (the default of BOOKWELL_WEBHOOK_RETRY_SCHEDULE_S).
RETRY_SCHEDULE_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.1
MAX_RETRY_AFTER_S = 86400.0  # a receiver's Retry-After is honoured up to a day


URL_MAX_LENGTH = 2048


def checked_url(url: str) -> str:
    """The URL as stored, if it fits (a parsed URL can grow: an IDN host becomes punycode)."""
    if len(url) > URL_MAX_LENGTH:
        raise InvalidInput(
            f"The URL is {len(url)} characters long once normalised; at most {URL_MAX_LENGTH} are allowed.",
            errors=(FieldError("/url", f"at most {URL_MAX_LENGTH} characters"),),
        )
    return url


def expand(selectors: Iterable[str]) -> frozenset[str]:
    """The event types a list of selectors takes."""
    chosen: set[str] = set()
    for selector in selectors:
        if selector == "*":
            chosen |= EVENT_TYPES
        elif selector.endswith(".*"):
            chosen |= {t for t in EVENT_TYPES if t.startswith(selector[:-1])}
        elif selector in EVENT_TYPES:
            chosen.add(selector)
        else:
            raise InvalidInput(f"{selector!r} is not an event type or a family of them.")
    return frozenset(chosen)


def selectors(given: Iterable[str]) -> tuple[str, ...]:
    """Selectors as an endpoint keeps them: known, each once."""
    chosen = tuple(given)
    if len(set(chosen)) != len(chosen):
        raise InvalidInput(
            "Each event type is listed once.", errors=(FieldError("/event_types", "must not repeat an item"),)
        )
    expand(chosen)
    return chosen


class EndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"


class DeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"


class StaleEndpoint(PreconditionFailed):
    """The caller's If-Match names a version that is no longer current."""


class UrlForbidden(InvalidInput):
    """The URL would reach somewhere a webhook must not (ADR 0032)."""

    code = "webhook_url_forbidden"
    title = "Webhook URL not allowed"


class UrlUnresolvable(UrlForbidden):
    code = "webhook_url_unresolvable"


class EndpointInactive(Conflict):
    """A test event to an endpoint that takes none until it is enabled again."""

    code = "webhook_endpoint_inactive"
    title = "Webhook endpoint inactive"


class ReplayTooLarge(InvalidInput):
    code = "webhook_replay_too_large"
    title = "Too many events to replay at once"


class DisabledReason(enum.StrEnum):
    GONE = "gone"  # the receiver answered 410
    FAILING = "failing"  # every attempt failed for `webhook_disable_after_s`


@dataclass
class Endpoint:
    """Where one organization's events of some types are sent."""

    id: str
    organization_id: str
    url: str
    event_types: tuple[str, ...]
    description: str | None
    active: bool
    disabled_reason: DisabledReason | None
    version: int
    created_at: datetime
    updated_at: datetime
    # Random salts the signing secrets are derived from; the secrets themselves are stored nowhere.
    secret_salt: str
    previous_secret_salt: str | None = None
    previous_secret_expires_at: datetime | None = None
    failing_since: datetime | None = None  # the first failed attempt since the last success

    def takes(self, event_type: str) -> bool:
        """Whether events of `event_type` are sent here."""
        return event_type == TEST_EVENT or event_type in expand(self.event_types)

    def salts(self, now: datetime) -> tuple[str, ...]:
        """The salts of the secrets that sign now: the current one, and the previous one in its grace period."""
        previous = self.previous_secret_salt
        if (
            previous is not None
            and self.previous_secret_expires_at is not None
            and now < self.previous_secret_expires_at
        ):
            return (self.secret_salt, previous)
        return (self.secret_salt,)

    def check_version(self, accepted: frozenset[int] | None) -> None:
        """Raise unless the caller's If-Match names the current version (None accepts any)."""
        if accepted is not None and self.version not in accepted:
            raise StaleEndpoint(f'The webhook endpoint has changed; its current ETag is "v{self.version}".')

    def update(self, changes: Mapping[str, Any], now: datetime) -> None:
        """Apply a partial change (`url` already checked by the caller); re-activating clears why it
        stopped and starts its days of failure afresh."""
        if not changes:
            raise InvalidInput("Name at least one of url, event_types, description and active to change.")
        if "event_types" in changes:
            self.event_types = selectors(changes["event_types"])
        if "url" in changes:
            self.url = checked_url(changes["url"])
        if "description" in changes:
            self.description = changes["description"]
        if "active" in changes and bool(changes["active"]) is not self.active:
            self.active = bool(changes["active"])
            self.disabled_reason = None
            if self.active:
                self.failing_since = None  # a fresh start: five more days before it is disabled again
        self._touch(now)

    def rotate_secret(self, now: datetime, grace: timedelta) -> None:
        """A new secret; the current one signs beside it until `now + grace` (an older one stops at once)."""
        self.previous_secret_salt = self.secret_salt
        self.previous_secret_expires_at = now + grace
        self.secret_salt = new_salt()
        self._touch(now)

    def disable(self, reason: DisabledReason, now: datetime) -> None:
        self.active = False
        self.disabled_reason = reason
        self._touch(now)

    def _touch(self, now: datetime) -> None:
        self.version += 1
        self.updated_at = now


def new_salt() -> str:
    return secrets.token_hex(16)


def create_endpoint(
    *, organization_id: str, url: str, event_types: Iterable[str], description: str | None, active: bool, now: datetime
) -> Endpoint:
    chosen = selectors(event_types)
    return Endpoint(
        id=new_id("whe"),
        organization_id=organization_id,
        url=checked_url(url),
        event_types=chosen,
        description=description,
        active=active,
        disabled_reason=None,
        version=1,
        created_at=now,
        updated_at=now,
        secret_salt=new_salt(),
    )


@dataclass(frozen=True)
class EventToSend:
    """An event of the event log, and how `GET /v1/events` shows it (what a delivery's body is)."""

    id: str
    type: str
    organization_id: str
    shown: Mapping[str, Any]


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


@dataclass(frozen=True)
class Attempt:
    """One try of a delivery, as the receiver answered it (or did not)."""

    number: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None
    retry_after_s: float | None = None  # the receiver's Retry-After on 429 or 503, not stored


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one endpoint; the body is serialised once and sent as it is on every attempt."""

    id: str
    organization_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    body: str
    status: DeliveryStatus
    attempts: int  # made in all
    scheduled_attempts: int  # made since the schedule last started (a retry or replay restarts it)
    next_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime
    claim: str | None = None  # the token of the dispatch that holds it; only that dispatch's job attempts it
    claimed_until: datetime | None = None  # the claim lapses then: the delivery is due again, for a new claim
    attempt_log: tuple[Attempt, ...] = field(default=())

    def after(
        self, attempt: Attempt, schedule: Sequence[float] = RETRY_SCHEDULE_S, rng: random.Random | None = None
    ) -> Delivery:
        """This delivery once `attempt` is recorded: succeeded, due again on `schedule`, or dead."""
        made = self.scheduled_attempts + 1
        delay = (
            None
            if succeeded(attempt) or attempt.status_code == 410
            else retry_delay_s(made, attempt.retry_after_s, schedule, rng)
        )
        status = (
            DeliveryStatus.SUCCEEDED if succeeded(attempt) else DeliveryStatus.DEAD if delay is None else self.status
        )
        return replace(
            self,
            status=status,
            attempts=self.attempts + 1,
            scheduled_attempts=made,
            last_status_code=attempt.status_code,
            updated_at=attempt.started_at,
            next_attempt_at=None if delay is None else attempt.started_at + timedelta(seconds=delay),
        )

    def again(self, now: datetime) -> Delivery:
        """Due now, on a fresh schedule (an operator's retry, or a replay)."""
        return replace(self, status=DeliveryStatus.PENDING, scheduled_attempts=0, next_attempt_at=now, updated_at=now)


def succeeded(attempt: Attempt) -> bool:
    return attempt.status_code is not None and 200 <= attempt.status_code < 300


def retry_delay_s(
    attempts_made: int,
    retry_after_s: float | None,
    schedule: Sequence[float] = RETRY_SCHEDULE_S,
    rng: random.Random | None = None,
) -> float | None:
    """How long after its `attempts_made`-th failed attempt a delivery is tried again; None: it is dead."""
    if attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1]
    delay = base * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def new_delivery(*, endpoint: Endpoint, event_id: str, event_type: str, body: str, now: datetime) -> Delivery:
    return Delivery(
        id=new_id("whd"),
        organization_id=endpoint.organization_id,
        endpoint_id=endpoint.id,
        event_id=event_id,
        event_type=event_type,
        body=body,
        status=DeliveryStatus.PENDING,
        attempts=0,
        scheduled_attempts=0,
        next_attempt_at=now,
        last_status_code=None,
        created_at=now,
        updated_at=now,
    )


# Standard Webhooks signatures (standardwebhooks.com). A secret is `whsec_` + base64 of 32 bytes:
# HMAC-SHA256 of the endpoint's random salt under the settings' secret key, so the database holds
# nothing that signs (ADR 0032). A delivery carries `webhook-id` (the event id), `webhook-timestamp`
# (Unix seconds of this attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of
# "{id}.{timestamp}.{body}">`, one per secret, space-separated during a rotation.
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not one
TOLERANCE_S = 300  # a receiver refuses a timestamp further than this from its clock
_CONTEXT = b"bookwell webhook signing secret\x00"


class InvalidSignature(Exception):
    """The delivery does not verify: a reason a person can read."""


def derive_secret(secret_key: str, salt: str) -> str:
    """The signing secret of `salt` under the settings' secret key."""
    raw = hmac.new(secret_key.encode(), _CONTEXT + salt.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """One `v1,<base64>` signature of the message."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(signing_secrets: Iterable[str], message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three headers of a delivery signed with every secret given."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in signing_secrets),
    }


def verify(secret: str, given: Mapping[str, str], body: str, now: float) -> str:
    """The message id of a delivery that verifies with `secret` (header names in lower case);
    `InvalidSignature` otherwise. What `bookwell webhooks listen` checks, as a receiver would."""
    try:
        message_id, stamp, signatures = given["webhook-id"], given["webhook-timestamp"], given["webhook-signature"]
    except KeyError as missing:
        raise InvalidSignature(f"no {missing.args[0]} header") from None
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a number") from None
    if abs(now - timestamp) > TOLERANCE_S:
        raise InvalidSignature(f"webhook-timestamp is {now - timestamp:+.0f} s off this clock")
    expected = signature(secret, message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, given_one) for given_one in signatures.split()):
        raise InvalidSignature("no signature matches this secret (tampered body, or another secret)")
    return message_id
