# Generated from src/bookwell/contract/openapi/v1.yaml by `make contract-models`. Do not edit by hand:
# change the contract and regenerate; `make test` fails when this file drifts from it.

from __future__ import annotations

from pydantic import AnyUrl, AwareDatetime, BaseModel, ConfigDict, Field, RootModel, conint, constr
from enum import Enum, StrEnum
from typing import Any
from bookwell.contract.types import Instant


class Error(BaseModel):
    pointer: str = Field(
        ...,
        description="JSON Pointer into the request: the body, or `/query/<name>` for a query parameter.",
        examples=["/start"],
    )
    detail: str = Field(..., examples=["must fall on a slot boundary (every 60 minutes from opening)"])


class Problem(BaseModel):
    type: AnyUrl = Field(
        ...,
        description="A URI under https://bookwell.dev/problems/",
        examples=["https://bookwell.dev/problems/slot-unavailable"],
    )
    title: str = Field(..., examples=["Slot unavailable"])
    status: conint(ge=400, le=599) = Field(..., examples=[409])
    detail: str | None = Field(None, examples=["The slot 2027-06-07T10:00:00Z to 11:00:00Z has no capacity left."])
    instance: str | None = Field(None, examples=["/v1/bookings"])
    code: constr(pattern=r"^[a-z][a-z0-9_]*$") = Field(..., examples=["slot_unavailable"])
    request_id: str = Field(..., examples=["3f2b8c1e9d7a4e56b0c4a1d2e3f40516"])
    errors: list[Error] | None = None


class Status(StrEnum):
    ok = "ok"


class Health(BaseModel):
    status: Status
    checks: dict[str, str] | None = Field(None, examples=[{"database": "ok"}])


class Timestamp(RootModel[AwareDatetime]):
    root: AwareDatetime = Field(..., description="RFC 3339, UTC, `Z` suffix.", examples=["2026-11-30T09:15:00Z"])


class OrganizationId(RootModel[constr(pattern=r"^org_[0-9A-Z]{26}$", max_length=30)]):
    root: constr(pattern=r"^org_[0-9A-Z]{26}$", max_length=30) = Field(..., examples=["org_01KBA0PHH0C9AMJ2TTDTB5NV62"])


class ApiKeyId(RootModel[constr(pattern=r"^key_[0-9A-Z]{26}$", max_length=30)]):
    root: constr(pattern=r"^key_[0-9A-Z]{26}$", max_length=30) = Field(..., examples=["key_01KBA0PHH0M7S6A86G90VJ7ZP2"])


class ResourceId(RootModel[constr(pattern=r"^res_[0-9A-Z]{26}$", max_length=30)]):
    root: constr(pattern=r"^res_[0-9A-Z]{26}$", max_length=30) = Field(..., examples=["res_01KBA0PHH03BZ3K7TXSQJ6YE2Y"])


class Organization(BaseModel):
    id: OrganizationId
    name: str = Field(..., examples=["Acme Sports"])
    created_at: Timestamp


class Scope(StrEnum):
    resources_read = "resources:read"
    resources_write = "resources:write"
    bookings_read = "bookings:read"
    bookings_write = "bookings:write"
    payments_read = "payments:read"
    payments_refund = "payments:refund"
    events_read = "events:read"
    webhooks_manage = "webhooks:manage"
    api_keys_manage = "api_keys:manage"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    name: constr(min_length=1, max_length=100) = Field(..., examples=["Booking widget"])
    scopes: list[Scope] = Field(..., max_length=9, min_length=1)


class ApiKey(BaseModel):
    id: ApiKeyId
    name: str = Field(..., examples=["Booking widget"])
    scopes: list[Scope]
    prefix: str = Field(
        ...,
        description="The key's public lookup part, to recognise it by (`bw_<prefix>_...`).",
        examples=["0123456789abcdef"],
    )
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class ApiKeyWithSecret(ApiKey):
    secret: str | None = Field(
        ...,
        description="The whole bearer token, shown once, in the first answer; null in an idempotent replay of it (the secret is never stored, not even for replays).",
        examples=["bw_0123456789abcdef_EXAMPLE-only-never-a-real-key_EXAMPLE-only-"],
    )


class ApiKeyList(BaseModel):
    data: list[ApiKey]
    has_more: bool
    next_cursor: str | None = Field(..., examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"])


class Money(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    amount: conint(ge=0, le=100000000) = Field(..., description="Minor units (cents).", examples=[2500])
    currency: constr(pattern=r"^[A-Z]{3}$") = Field(..., description="ISO 4217 code.", examples=["EUR"])


class TimeOfDay(RootModel[constr(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]):
    root: constr(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$") = Field(
        ...,
        description="Local wall-clock time `HH:MM`; `24:00` may end an interval and means midnight.",
        examples=["08:00"],
    )


class Interval(RootModel[list[TimeOfDay]]):
    root: list[TimeOfDay] = Field(..., examples=[["08:00", "20:00"]], max_length=2, min_length=2)


class DayHours(RootModel[list[Interval]]):
    root: list[Interval] = Field(..., examples=[[["08:00", "20:00"]]], max_length=24)


class OpeningHours(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    monday: DayHours | None = None
    tuesday: DayHours | None = None
    wednesday: DayHours | None = None
    thursday: DayHours | None = None
    friday: DayHours | None = None
    saturday: DayHours | None = None
    sunday: DayHours | None = None


class CancellationPolicy(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    refund_until_hours_before: conint(ge=0, le=8760) = Field(..., examples=[24])


class ResourceName(RootModel[constr(min_length=1, max_length=200)]):
    root: constr(min_length=1, max_length=200) = Field(..., examples=["Court 1"])


class ResourceDescription(RootModel[constr(max_length=2000)]):
    root: constr(max_length=2000) = Field(..., examples=["Outdoor clay court with floodlights."])


class Timezone(RootModel[constr(min_length=1, max_length=64)]):
    root: constr(min_length=1, max_length=64) = Field(
        ..., description="IANA time zone, e.g. `Europe/Berlin`.", examples=["Europe/Berlin"]
    )


class Capacity(RootModel[conint(ge=1, le=1000)]):
    root: conint(ge=1, le=1000) = Field(..., description="Bookings that may overlap.", examples=[1])


class SlotMinutes(RootModel[conint(ge=5, le=1440)]):
    root: conint(ge=5, le=1440) = Field(..., description="Slot length; must divide a day (1440) evenly.", examples=[60])


class SlotCount(RootModel[conint(ge=1, le=288)]):
    root: conint(ge=1, le=288) = Field(..., examples=[2])


class HoldMinutes(RootModel[conint(ge=1, le=60)]):
    root: conint(ge=1, le=60) = Field(..., examples=[10])


class ResourceCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    name: ResourceName
    description: ResourceDescription | None = None
    timezone: Timezone
    capacity: Capacity | None = None
    slot_minutes: SlotMinutes
    min_slots: SlotCount | None = None
    max_slots: SlotCount | None = None
    opening_hours: OpeningHours
    price_per_slot: Money
    hold_minutes: HoldMinutes | None = None
    cancellation: CancellationPolicy | None = None
    active: bool | None = None


class ResourceUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    name: ResourceName | None = None
    description: ResourceDescription | None = None
    timezone: Timezone | None = None
    capacity: Capacity | None = None
    slot_minutes: SlotMinutes | None = None
    min_slots: SlotCount | None = None
    max_slots: SlotCount | None = None
    opening_hours: OpeningHours | None = None
    price_per_slot: Money | None = None
    hold_minutes: HoldMinutes | None = None
    cancellation: CancellationPolicy | None = None
    active: bool | None = None


class Resource(BaseModel):
    id: ResourceId
    name: str = Field(..., examples=["Court 1"])
    description: str | None = Field(..., examples=["Outdoor clay court with floodlights."])
    timezone: str = Field(..., examples=["Europe/Berlin"])
    capacity: int = Field(..., examples=[1])
    slot_minutes: int = Field(..., examples=[60])
    min_slots: int = Field(..., examples=[1])
    max_slots: int = Field(..., examples=[2])
    opening_hours: OpeningHours
    price_per_slot: Money
    hold_minutes: int = Field(..., examples=[10])
    cancellation: CancellationPolicy
    active: bool
    created_at: Timestamp
    updated_at: Timestamp


class IdempotencyKeyValue(RootModel[constr(pattern=r"^[\x20-\x7E]+$", min_length=1, max_length=255)]):
    root: constr(pattern=r"^[\x20-\x7E]+$", min_length=1, max_length=255) = Field(
        ..., examples=["7c9e6679-7425-40de-944b-e07fc1f90ae7"]
    )


class BookingId(RootModel[constr(pattern=r"^bkg_[0-9A-Z]{26}$", max_length=30)]):
    root: constr(pattern=r"^bkg_[0-9A-Z]{26}$", max_length=30) = Field(..., examples=["bkg_01KBA0PHH0T7VGM8NQ3PQNM9RR"])


class PaymentId(RootModel[constr(pattern=r"^pay_[0-9A-Z]{26}$", max_length=30)]):
    root: constr(pattern=r"^pay_[0-9A-Z]{26}$", max_length=30) = Field(..., examples=["pay_01KBA0PHH0744PZGSR1HSGJ5ZM"])


class RefundCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    amount: Money | None = Field(
        None,
        description="How much to give back, in the payment's currency (another currency is 422 `currency_mismatch`); at least 1 minor unit. Default: all that is left to refund.",
    )


class Status1(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class Refund(BaseModel):
    id: str = Field(..., examples=["rfd_01KBA0PHH0YWE5P57KEC6CMHBP"])
    payment_id: PaymentId
    amount: Money
    status: Status1
    reason: str = Field(..., examples=["requested"])
    provider_reference: str | None = Field(..., examples=["re_3QfK2xLkd8Q1"])
    failure_code: str | None = Field(..., examples=["insufficient_funds"])
    created_at: Timestamp
    updated_at: Timestamp


class Status2(StrEnum):
    running = "running"
    done = "done"


class SagaState(BaseModel):
    step: str = Field(..., description="The current (or last) step: charge, compensate.", examples=["charge"])
    status: Status2
    outcome: str | None = Field(
        ..., description="How it ended: confirmed, failed, refunded, void.", examples=["confirmed"]
    )
    attempts: int = Field(..., description="Unanswered tries of the current step.", examples=[0])
    next_attempt_at: Timestamp | None


class Status3(StrEnum):
    pending = "pending"
    captured = "captured"
    failed = "failed"
    partially_refunded = "partially_refunded"
    refunded = "refunded"


class Payment(BaseModel):
    id: PaymentId
    booking_id: BookingId
    amount: Money
    status: Status3
    provider: str = Field(..., examples=["fake"])
    provider_reference: str | None = Field(..., examples=["ch_3QfK2xLkd8Q1"])
    failure_code: str | None = Field(..., examples=["card_declined"])
    refunded_amount: Money = Field(
        ..., description="What the refunds that succeeded gave back, in the payment's currency."
    )
    refunds: list[Refund]
    saga: SagaState | None
    created_at: Timestamp
    updated_at: Timestamp


class PaymentList(BaseModel):
    data: list[Payment]
    has_more: bool
    next_cursor: str | None = Field(..., examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"])


class EventId(RootModel[constr(pattern=r"^evt_[0-9A-Z]{26}$", max_length=30)]):
    root: constr(pattern=r"^evt_[0-9A-Z]{26}$", max_length=30) = Field(..., examples=["evt_01KBA0PHH0XHKXVZ4G5CYF0QRJ"])


class Email(RootModel[constr(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]):
    root: constr(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254) = Field(
        ...,
        description="An email address, checked as one (no control, zero-width or other unsafe characters, no quoted local part, a valid internationalized domain; 422 otherwise) and kept in its normal form: Unicode NFC, the domain decoded from IDNA and lowercased; the local part as given. A `customer_email` filter matches with the local part casefolded (`ÄDA@xn--bcher-kva.example` finds `äda@bücher.example`).",
        examples=["ada@example.com"],
    )


class BookingStatus(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    failed = "failed"
    expired = "expired"
    cancelled = "cancelled"


class Metadata(RootModel[dict[constr(min_length=1, max_length=40), constr(max_length=500)]]):
    root: dict[constr(min_length=1, max_length=40), constr(max_length=500)] = Field(
        ...,
        description="Up to 20 keys of up to 40 characters; string values of up to 500 characters.",
        examples=[{"source": "web", "court_booking_ref": "A-1042"}],
        max_length=20,
    )


class Customer(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    name: constr(min_length=1, max_length=200) = Field(..., examples=["Ada Lovelace"])
    email: Email


class PaymentInput(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    token: constr(min_length=1, max_length=255) = Field(
        ...,
        description="A payment method token of the provider (test tokens: `tok_ok`, `tok_decline`, `tok_flaky`, `tok_slow`).",
        examples=["tok_ok"],
    )


class BookingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    resource_id: ResourceId
    start: Instant = Field(..., description="A slot boundary inside opening hours, in the future.")
    end: Instant
    customer: Customer
    quantity: conint(ge=1, le=1000) | None = Field(
        None, description="Units of capacity taken; default 1.", examples=[1]
    )
    payment: PaymentInput | None = None
    metadata: Metadata | None = None


class BookingCancel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    reason: constr(max_length=500) | None = Field(None, examples=["The customer moved the lesson to next week."])


class Customer1(BaseModel):
    name: str = Field(..., examples=["Ada Lovelace"])
    email: str = Field(..., examples=["ada@example.com"])


class Booking(BaseModel):
    id: BookingId
    resource_id: ResourceId
    start: Timestamp
    end: Timestamp
    quantity: int = Field(..., examples=[1])
    customer: Customer1
    status: BookingStatus
    hold_expires_at: Timestamp | None
    price: Money
    metadata: dict[str, str] = Field(..., examples=[{"source": "web", "court_booking_ref": "A-1042"}])
    cancellation_reason: str | None = Field(..., examples=["The customer moved the lesson to next week."])
    created_at: Timestamp
    updated_at: Timestamp
    saga: SagaState | None = Field(
        None,
        description="`GET /v1/bookings/{id}` only: where the saga charging a priced booking stands (null for a free one).",
    )


class BookingList(BaseModel):
    data: list[Booking]
    has_more: bool
    next_cursor: str | None = Field(..., examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"])


class Slot(BaseModel):
    start: Timestamp
    end: Timestamp
    remaining: conint(ge=0) = Field(..., examples=[1])


class Availability(BaseModel):
    resource_id: ResourceId
    from_: Timestamp = Field(..., alias="from")
    to: Timestamp
    slots: list[Slot]


class EventType(StrEnum):
    resource_created = "resource.created"
    resource_updated = "resource.updated"
    resource_deleted = "resource.deleted"
    booking_created = "booking.created"
    booking_confirmed = "booking.confirmed"
    booking_failed = "booking.failed"
    booking_expired = "booking.expired"
    booking_cancelled = "booking.cancelled"
    payment_captured = "payment.captured"
    payment_failed = "payment.failed"
    payment_refunded = "payment.refunded"
    webhook_endpoint_disabled = "webhook_endpoint.disabled"


class Data(BaseModel):
    object: dict[str, Any] = Field(..., examples=[{"id": "bkg_01KBA0PHH0T7VGM8NQ3PQNM9RR", "status": "confirmed"}])


class Event(BaseModel):
    id: EventId
    type: EventType
    created_at: Timestamp
    data: Data


class EventList(BaseModel):
    data: list[Event]
    has_more: bool
    next_cursor: str | None = Field(..., examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"])


class ResourceList(BaseModel):
    data: list[Resource]
    has_more: bool
    next_cursor: str | None = Field(..., examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"])


class WebhookEndpointId(RootModel[constr(pattern=r"^whe_[0-9A-Z]{26}$", max_length=30)]):
    root: constr(pattern=r"^whe_[0-9A-Z]{26}$", max_length=30) = Field(..., examples=["whe_01KBA0PHH0QW3XQ3C3Y7D5T8MN"])


class WebhookDeliveryId(RootModel[constr(pattern=r"^whd_[0-9A-Z]{26}$", max_length=30)]):
    root: constr(pattern=r"^whd_[0-9A-Z]{26}$", max_length=30) = Field(..., examples=["whd_01KBA0PHH0D2WJ4N6Q8R0S1T3V"])


class WebhookUrl(RootModel[AnyUrl]):
    root: AnyUrl = Field(..., examples=["https://partner.example.com/bookwell/webhooks"])


class WebhookDescription(RootModel[constr(max_length=500)]):
    root: constr(max_length=500) = Field(..., examples=["Partner CRM"])


class WebhookEventSelector(StrEnum):
    field_ = "*"
    resource__ = "resource.*"
    booking__ = "booking.*"
    payment__ = "payment.*"
    webhook_endpoint__ = "webhook_endpoint.*"
    resource_created = "resource.created"
    resource_updated = "resource.updated"
    resource_deleted = "resource.deleted"
    booking_created = "booking.created"
    booking_confirmed = "booking.confirmed"
    booking_failed = "booking.failed"
    booking_expired = "booking.expired"
    booking_cancelled = "booking.cancelled"
    payment_captured = "payment.captured"
    payment_failed = "payment.failed"
    payment_refunded = "payment.refunded"
    webhook_endpoint_disabled = "webhook_endpoint.disabled"


class WebhookEventSelectors(RootModel[list[WebhookEventSelector]]):
    root: list[WebhookEventSelector] = Field(
        ..., examples=[["booking.*", "payment.refunded"]], max_length=20, min_length=1
    )


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    url: WebhookUrl
    event_types: WebhookEventSelectors
    description: WebhookDescription | None = None
    active: bool | None = True


class WebhookEndpointUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    url: WebhookUrl | None = None
    event_types: WebhookEventSelectors | None = None
    description: WebhookDescription | None = None
    active: bool | None = None


class DisabledReason(Enum):
    gone = "gone"
    failing = "failing"
    NoneType_None = None


class WebhookEndpoint(BaseModel):
    id: WebhookEndpointId
    url: WebhookUrl
    event_types: WebhookEventSelectors
    description: str | None = Field(..., examples=["Partner CRM"])
    active: bool
    disabled_reason: DisabledReason | None = Field(
        ...,
        description="Why Bookwell stopped sending (null while active, or when a client set `active` false): `gone`, the receiver answered 410; `failing`, every attempt failed for `BOOKWELL_WEBHOOK_DISABLE_AFTER_S` (5 days by default).",
        examples=[None],
    )
    created_at: Timestamp
    updated_at: Timestamp


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str | None = Field(
        ...,
        description="The signing secret (`whsec_` and the base64 of 32 bytes), shown once, in the first answer; null in an idempotent replay of it. Bookwell stores no copy of it.",
        examples=["whsec_RVhBTVBMRS1vbmx5LW5ldmVyLWEtcmVhbC1zZWNyZXQ="],
    )


class WebhookEndpointList(BaseModel):
    data: list[WebhookEndpoint]
    has_more: bool
    next_cursor: str | None = Field(..., examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"])


class WebhookReplay(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    since: Timestamp


class WebhookReplayed(BaseModel):
    deliveries: conint(ge=0) = Field(..., description="How many deliveries are now due.", examples=[12])


class WebhookDeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    dead = "dead"


class WebhookDelivery(BaseModel):
    id: WebhookDeliveryId
    endpoint_id: WebhookEndpointId
    event_id: EventId
    event_type: str = Field(..., examples=["booking.confirmed"])
    status: WebhookDeliveryStatus
    attempts: conint(ge=0) = Field(..., description="Attempts made so far.", examples=[1])
    next_attempt_at: AwareDatetime | None = Field(
        ...,
        description="When the next attempt is due (null once it succeeded or is dead).",
        examples=["2026-11-30T09:20:00Z"],
    )
    last_status_code: int | None = Field(
        ..., description="The HTTP status of the last attempt (null when it got none).", examples=[200]
    )
    created_at: Timestamp
    updated_at: Timestamp


class WebhookAttempt(BaseModel):
    number: conint(ge=1) = Field(..., examples=[1])
    started_at: Timestamp
    status_code: int | None = Field(..., examples=[200])
    latency_ms: conint(ge=0) = Field(..., examples=[84])
    error: str | None = Field(
        ..., description="Why no status came back: `timeout`, `connect_failed`, `url_forbidden`, ...", examples=[None]
    )
    response_body: str | None = Field(
        ...,
        description="Up to the first 1 KiB of the answer's body as it came (never decompressed), read as UTF-8 with what does not decode replaced; null when no answer came.",
        examples=["ok"],
    )


class WebhookDeliveryWithAttempts(WebhookDelivery):
    attempt_log: list[WebhookAttempt]


class WebhookDeliveryList(BaseModel):
    data: list[WebhookDelivery]
    has_more: bool
    next_cursor: str | None = Field(..., examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"])


class ListApiKeysParametersQuery(BaseModel):
    limit: conint(ge=1, le=100) | None = 20
    cursor: constr(min_length=1, max_length=512) | None = Field(
        None, examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"]
    )


class ListResourcesParametersQuery(BaseModel):
    limit: conint(ge=1, le=100) | None = 20
    cursor: constr(min_length=1, max_length=512) | None = Field(
        None, examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"]
    )
    active: bool | None = None


class GetAvailabilityParametersQuery(BaseModel):
    from_: Instant = Field(..., alias="from")
    to: Instant


class ListBookingsParametersQuery(BaseModel):
    limit: conint(ge=1, le=100) | None = 20
    cursor: constr(min_length=1, max_length=512) | None = Field(
        None, examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"]
    )
    resource_id: ResourceId | None = None
    status: BookingStatus | None = None
    customer_email: Email | None = None
    start_from: Instant | None = None
    start_to: Instant | None = None


class ListPaymentsParametersQuery(BaseModel):
    limit: conint(ge=1, le=100) | None = 20
    cursor: constr(min_length=1, max_length=512) | None = Field(
        None, examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"]
    )
    booking_id: BookingId | None = None


class ListEventsParametersQuery(BaseModel):
    limit: conint(ge=1, le=100) | None = 20
    cursor: constr(min_length=1, max_length=512) | None = Field(
        None, examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"]
    )
    type: EventType | None = None


class ListWebhookEndpointsParametersQuery(BaseModel):
    limit: conint(ge=1, le=100) | None = 20
    cursor: constr(min_length=1, max_length=512) | None = Field(
        None, examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"]
    )


class ListWebhookDeliveriesParametersQuery(BaseModel):
    limit: conint(ge=1, le=100) | None = 20
    cursor: constr(min_length=1, max_length=512) | None = Field(
        None, examples=["eyJrIjpbIjIwMjYtMTEtMzBUMDk6MTU6MDBaIl19.3q2-7w"]
    )
    status: WebhookDeliveryStatus | None = None


class GetContractResponse(BaseModel):
    pass
