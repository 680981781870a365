"""The public JSON shape of every object (CONTRACT.md section 3), shared by API and webhooks.

Services take and return ``paygate.types``; these views are built only at the edges: the API's
resources, the webhook payloads, and the stored response of an idempotent create.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..errors import WEBHOOK_RETRY_SCHEDULED
from ..types import (
    Listing,
    Merchant,
    Order,
    Payment,
    PaymentStatus,
    Refund,
    T,
    WebhookEndpoint,
    WebhookLog,
)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with a ``Z``, second precision: ``2024-01-15T10:31:00Z``."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC and moment.tzinfo is not None:  # naive: taken to be UTC
        moment = moment.astimezone(UTC)
    # A third of strftime's cost (f-strings with format specs: two thirds); every response and
    # event body formats several moments.
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )


def pick(record: Any, *names: str) -> dict[str, Any]:
    """``{name: value}`` of a record's fields, in this order (values as they are)."""
    return {name: getattr(record, name) for name in names}


def order_view(order: Order) -> dict[str, Any]:
    return {
        **pick(order, "id", "merchant_id", "amount", "currency", "receipt"),
        "notes": order.notes or {},
        "status": str(order.status),
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
    }


def order_public_view(order: Order, merchant_name: str | None) -> dict[str, Any]:
    return {
        **pick(order, "id", "amount", "currency"),
        "status": str(order.status),
        "merchant_name": merchant_name,
    }


def _method_fields(payment: Payment) -> dict[str, Any]:
    if payment.method == "upi":
        return {"vpa": payment.vpa}
    if payment.method == "card":
        return {"card_network": payment.card_network, "card_last4": payment.card_last4}
    return {}


PAYMENT_HEAD = ("id", "order_id", "amount", "currency", "method")
ERROR = ("error_code", "error_description")


def payment_public_view(payment: Payment) -> dict[str, Any]:
    view = {
        **pick(payment, *PAYMENT_HEAD),
        "status": str(payment.status),
        **pick(payment, *ERROR),
        "created_at": iso(payment.created_at),
    }
    if payment.next_action is not None and payment.status == PaymentStatus.PENDING:
        view["next_action"] = payment.next_action.as_dict()
    return view


def payment_view(payment: Payment) -> dict[str, Any]:
    """The full payment: the method's fields, capture and refund state, and ``updated_at``
    besides what the public view shows. Written out field by field: it is built on every
    payment request and event (the hot path)."""
    view = {
        "id": payment.id,
        "order_id": payment.order_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "method": payment.method,
        **_method_fields(payment),
        "status": str(payment.status),
        "captured": payment.captured,
        "amount_captured": payment.amount_captured,
        "capture_status": payment.capture_status,
        "capture_error_code": payment.capture_error_code,
        "capture_error_description": payment.capture_error_description,
        "released_at": iso(payment.released_at),
        "amount_refunded": payment.amount_refunded,
        "error_code": payment.error_code,
        "error_description": payment.error_description,
        "processor_reference": payment.processor_reference,
        "created_at": iso(payment.created_at),
        "updated_at": iso(payment.updated_at),
    }
    # While the buyer must act (absent otherwise, and once the payment is final).
    if payment.next_action is not None and payment.status == PaymentStatus.PENDING:
        view["next_action"] = payment.next_action.as_dict()
    # How the processor was chosen and every fallback (absent for payments made before
    # routing was recorded). Never in the public (checkout) view: it names processors.
    if payment.routing is not None:
        view["routing"] = routing_view(payment.routing)
    return view


ROUTING_ATTEMPT = ("processor", "stage", "outcome", "reason", "at")


def routing_view(record: Any) -> dict[str, Any]:
    """The documented ``routing`` object: processor, decided_by, reason, candidates, and each
    attempt (processor, stage, outcome, reason, at; ``times`` and ``last_at`` when it
    repeated)."""
    attempts = []
    for attempt in record.get("attempts") or []:
        item = {name: attempt.get(name) for name in ROUTING_ATTEMPT}
        if attempt.get("times"):
            item["times"] = attempt["times"]
            item["last_at"] = attempt.get("last_at")
        attempts.append(item)
    return {
        "processor": record.get("processor"),
        "decided_by": record.get("decided_by"),
        "reason": record.get("reason") or "",
        "candidates": list(record.get("candidates") or []),
        "attempts": attempts,
    }


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        **pick(refund, "id", "payment_id", "amount", "reason"),
        "status": str(refund.status),
        **pick(refund, *ERROR),
        "processor_reference": refund.processor_reference,
        "created_at": iso(refund.created_at),
        "processed_at": iso(refund.processed_at),
    }


def webhook_log_view(log: WebhookLog) -> dict[str, Any]:
    return {
        **pick(log, "id", "event"),
        "status": str(log.status),
        "attempts": log.attempts,
        "created_at": iso(log.created_at),
        "last_attempt_at": iso(log.last_attempt_at),
        "next_retry_at": iso(log.next_retry_at),
        "response_code": log.response_code,
        # (beyond) where it went: null for the primary webhook_url, else the endpoint's id.
        "endpoint_id": log.endpoint_id,
        "url": log.url,
        # (beyond) why it failed, null unless failed: the last attempt's error or answer, or
        # why it ended unsent (its endpoint disabled or deleted, the primary URL removed).
        "failure_reason": log.failure_reason,
    }


def webhook_endpoint_view(endpoint: WebhookEndpoint, secret: str | None) -> dict[str, Any]:
    """An endpoint (``id`` ``primary``: the merchant's webhook_url, read-only); ``secret`` in
    full only when it was just issued, else masked."""
    return {
        **pick(endpoint, "id", "url"),
        "events": list(endpoint.events),
        **pick(endpoint, "description", "enabled"),
        "primary": endpoint.id == "primary",
        "secret": secret,
        "previous_secret_until": iso(endpoint.previous_secret_until),
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
    }


def webhook_retry_view(log_id: str) -> dict[str, Any]:
    return {"id": log_id, "status": "pending", "message": WEBHOOK_RETRY_SCHEDULED}


def webhook_config_view(merchant: Merchant) -> dict[str, Any]:
    return {"webhook_url": merchant.webhook_url or None, "webhook_secret": merchant.webhook_secret}


def test_merchant_view(merchant: Merchant) -> dict[str, Any]:
    return {**pick(merchant, "id", "email", "api_key"), "seeded": True}


def page(listing: Listing[T], view: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """``{data, total, limit, offset}`` of a listing, each item through ``view``."""
    return {
        "data": [view(item) for item in listing.items],
        "total": listing.total,
        "limit": listing.limit,
        "offset": listing.offset,
    }
