"""The public JSON shape of every object (CONTRACT.md section 3), shared by API and webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..types import Payment, Refund


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with a ``Z``, second precision: ``2024-01-15T10:31:00Z``."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def order_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "merchant_id": str(row["merchant_id"]),
        "amount": row["amount"],
        "currency": row["currency"],
        "receipt": row["receipt"],
        "notes": row["notes"] or {},
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def order_public_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "amount": row["amount"],
        "currency": row["currency"],
        "status": row["status"],
        "merchant_name": row.get("merchant_name"),
    }


def _method_fields(payment: Payment) -> dict[str, Any]:
    if payment.method == "upi":
        return {"vpa": payment.vpa}
    if payment.method == "card":
        return {"card_network": payment.card_network, "card_last4": payment.card_last4}
    return {}


def payment_view(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "method": payment.method,
        **_method_fields(payment),
        "status": str(payment.status),
        "captured": payment.captured,
        "amount_refunded": payment.amount_refunded,
        "error_code": payment.error_code,
        "error_description": payment.error_description,
        "created_at": iso(payment.created_at),
        "updated_at": iso(payment.updated_at),
    }


def payment_public_view(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "method": payment.method,
        "status": str(payment.status),
        "error_code": payment.error_code,
        "error_description": payment.error_description,
        "created_at": iso(payment.created_at),
    }


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "reason": refund.reason,
        "status": str(refund.status),
        "error_code": refund.error_code,
        "error_description": refund.error_description,
        "created_at": iso(refund.created_at),
        "processed_at": iso(refund.processed_at),
    }


def webhook_log_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "event": row["event"],
        "status": row["status"],
        "attempts": row["attempts"],
        "created_at": iso(row["created_at"]),
        "last_attempt_at": iso(row["last_attempt_at"]),
        "next_retry_at": iso(row["next_retry_at"]),
        "response_code": row["response_code"],
    }


def page(data: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"data": data, "total": total, "limit": limit, "offset": offset}
