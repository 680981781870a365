"""Typed, frozen views of the API's JSON answers.

Money is an ``int`` of minor units (paise); timestamps are timezone-aware ``datetime`` objects
in UTC (``None`` when the API sent null or left the key out). A field the answer does not carry
is ``None``. ``raw`` is the whole JSON object as the API answered it, so a key added to the API
later is never lost: ``payment.raw["new_key"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

__all__ = [
    "Order",
    "Payment",
    "NextAction",
    "Refund",
    "WebhookLog",
    "WebhookConfig",
    "WebhookEndpoint",
    "Circuit",
    "Page",
    "EventFeed",
    "FeedEvent",
    "parse_time",
]

T = TypeVar("T")


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (``2024-01-15T10:31:00Z``) as an aware datetime; None stays None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _raw(data: Mapping[str, Any]) -> dict[str, Any]:
    return dict(data)


@dataclass(frozen=True)
class Order:
    id: str
    amount: int
    currency: str
    status: str
    merchant_id: str | None = None
    receipt: str | None = None
    notes: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        return cls(
            id=data["id"],
            amount=int(data["amount"]),
            currency=data.get("currency", "INR"),
            status=data.get("status", ""),
            merchant_id=data.get("merchant_id"),
            receipt=data.get("receipt"),
            notes=data.get("notes"),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
            raw=_raw(data),
        )


@dataclass(frozen=True)
class NextAction:
    """What the buyer must do before the payment can settle (3-D Secure, a bank's page)."""

    type: str
    url: str


@dataclass(frozen=True)
class Payment:
    id: str
    order_id: str
    amount: int
    currency: str
    method: str
    status: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    vpa: str | None = None
    card_network: str | None = None
    card_last4: str | None = None
    captured: bool | None = None
    error_code: str | None = None
    error_description: str | None = None
    amount_captured: int | None = None
    amount_refunded: int | None = None  # the pending and processed refunds' sum
    capture_status: str | None = None
    capture_error_code: str | None = None
    capture_error_description: str | None = None
    released_at: datetime | None = None
    processor_reference: str | None = None
    next_action: NextAction | None = None
    # {processor, decided_by, reason, candidates, attempts} (docs/api.md "Routing and fallback")
    routing: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Payment:
        action = data.get("next_action")
        return cls(
            id=data["id"],
            order_id=data.get("order_id", ""),
            amount=int(data["amount"]),
            currency=data.get("currency", "INR"),
            method=data.get("method", ""),
            status=data.get("status", ""),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
            vpa=data.get("vpa"),
            card_network=data.get("card_network"),
            card_last4=data.get("card_last4"),
            captured=data.get("captured"),
            error_code=data.get("error_code"),
            error_description=data.get("error_description"),
            amount_captured=_int(data.get("amount_captured")),
            amount_refunded=_int(data.get("amount_refunded")),
            capture_status=data.get("capture_status"),
            capture_error_code=data.get("capture_error_code"),
            capture_error_description=data.get("capture_error_description"),
            released_at=parse_time(data.get("released_at")),
            processor_reference=data.get("processor_reference"),
            next_action=(
                NextAction(type=action.get("type", "redirect"), url=action["url"])
                if isinstance(action, dict) and "url" in action
                else None
            ),
            routing=data.get("routing"),
            raw=_raw(data),
        )


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    amount: int
    status: str
    reason: str | None = None
    created_at: datetime | None = None
    processed_at: datetime | None = None
    processor_reference: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Refund:
        return cls(
            id=data["id"],
            payment_id=data.get("payment_id", ""),
            amount=int(data["amount"]),
            status=data.get("status", ""),
            reason=data.get("reason"),
            created_at=parse_time(data.get("created_at")),
            processed_at=parse_time(data.get("processed_at")),
            processor_reference=data.get("processor_reference"),
            raw=_raw(data),
        )


@dataclass(frozen=True)
class WebhookLog:
    """One delivery of one event to one endpoint (``GET /api/v1/webhooks``)."""

    id: str
    event: str
    status: str
    attempts: int
    created_at: datetime | None = None
    last_attempt_at: datetime | None = None
    next_retry_at: datetime | None = None
    response_code: int | None = None
    endpoint_id: str | None = None  # None: the primary endpoint (webhook_url)
    url: str | None = None
    failure_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookLog:
        return cls(
            id=data["id"],
            event=data.get("event", ""),
            status=data.get("status", ""),
            attempts=int(data.get("attempts") or 0),
            created_at=parse_time(data.get("created_at")),
            last_attempt_at=parse_time(data.get("last_attempt_at")),
            next_retry_at=parse_time(data.get("next_retry_at")),
            response_code=_int(data.get("response_code")),
            endpoint_id=data.get("endpoint_id"),
            url=data.get("url"),
            failure_reason=data.get("failure_reason"),
            raw=_raw(data),
        )


@dataclass(frozen=True)
class WebhookConfig:
    """The primary endpoint: ``webhook_url`` (None when unset) and the merchant's secret."""

    webhook_url: str | None
    webhook_secret: str | None = field(default=None, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookConfig:
        return cls(
            webhook_url=data.get("webhook_url") or None,
            webhook_secret=data.get("webhook_secret"),
            raw=_raw(data),
        )


@dataclass(frozen=True)
class Circuit:
    """An endpoint's circuit breaker: ``closed``, ``open`` (until ``retry_at``) or
    ``half_open``."""

    state: str
    failures: int
    retry_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Circuit:
        return cls(
            state=data.get("state", ""),
            failures=int(data.get("failures") or 0),
            retry_at=parse_time(data.get("retry_at")),
        )


@dataclass(frozen=True)
class WebhookEndpoint:
    """A webhook endpoint (docs/webhooks.md, "Several endpoints"). ``secret`` is in full only
    in the answer that created or rotated it, masked (``whsec_...abcd``) elsewhere."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    primary: bool
    description: str | None = None
    secret: str | None = field(default=None, repr=False)
    previous_secret_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    circuit: Circuit | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookEndpoint:
        circuit = data.get("circuit")
        return cls(
            id=data["id"],
            url=data.get("url", ""),
            events=list(data.get("events") or []),
            enabled=bool(data.get("enabled", True)),
            primary=bool(data.get("primary", False)),
            description=data.get("description"),
            secret=data.get("secret"),
            previous_secret_until=parse_time(data.get("previous_secret_until")),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
            circuit=Circuit.from_dict(circuit) if isinstance(circuit, dict) else None,
            raw=_raw(data),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: ``data`` and the ``total`` matching; ``limit``/``offset`` as the
    API applied them (None for lists that are not paged, such as webhook endpoints)."""

    data: list[T]
    total: int
    limit: int | None = None
    offset: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def has_more(self) -> bool:
        if self.limit is None or self.offset is None:
            return False
        return self.offset + len(self.data) < self.total


@dataclass(frozen=True)
class FeedEvent:
    """One event of the merchant's event log, with the delivery it makes: ``headers`` (the
    signature headers included) and ``body``, the exact bytes a delivery carries, as text."""

    id: str
    event: str
    created_at: datetime | None
    headers: dict[str, str]
    body: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedEvent:
        webhook = data.get("webhook") or {}
        return cls(
            id=data["id"],
            event=data.get("event", ""),
            created_at=parse_time(data.get("created_at")),
            headers={str(k): str(v) for k, v in (webhook.get("headers") or {}).items()},
            body=webhook.get("body", ""),
            raw=_raw(data),
        )


@dataclass(frozen=True)
class EventFeed:
    """``GET /api/v1/events/feed``: the events after a cursor, the cursor to ask from next, and
    whether more are waiting."""

    data: list[FeedEvent]
    cursor: str
    has_more: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventFeed:
        return cls(
            data=[FeedEvent.from_dict(item) for item in data.get("data") or []],
            cursor=str(data.get("cursor", "")),
            has_more=bool(data.get("has_more", False)),
            raw=_raw(data),
        )
