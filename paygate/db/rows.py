"""Row-to-type conversion shared by the repositories."""

from __future__ import annotations

from typing import Any

from ..types import (
    ApiKey,
    DeliveryStatus,
    Merchant,
    NextAction,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    WebhookAttempt,
    WebhookLog,
)

_PAYMENT_FIELDS = (
    "id merchant_id order_id amount currency method processor vpa card_network card_last4 "
    "captured amount_refunded error_code error_description processor_reference created_at "
    "updated_at captured_at checkout method_token amount_captured capture_status "
    "capture_error_code capture_error_description released_at routing"
).split()
_MERCHANT_FIELDS = (
    "name email api_key webhook_url processor password_hash is_active "
    "created_at updated_at previous_webhook_secret_until"
).split()
# What a sealed webhook secret starts with (paygate.services.webhook_secrets writes them).
SEALED_PREFIX = "v1:"
_ORDER_FIELDS = "amount currency receipt created_at updated_at".split()
_WEBHOOK_LOG_FIELDS = (
    "event attempts response_code created_at last_attempt_at next_retry_at updated_at body "
    "response_body failure_reason"
).split()
_ATTEMPT_FIELDS = "attempt url response_code response_body error duration_ms attempted_at".split()
_REFUND_FIELDS = (
    "id payment_id merchant_id amount reason error_code error_description processor_reference "
    "created_at processed_at updated_at"
).split()


def payment_from_row(row: dict[str, Any]) -> Payment:
    values = {name: row[name] for name in _PAYMENT_FIELDS if name in row}
    values["merchant_id"] = str(values["merchant_id"])
    url = row.get("next_action_url")
    if url is not None:
        values["next_action"] = NextAction(url=url)
    return Payment(status=PaymentStatus(row["status"]), **values)


def refund_from_row(row: dict[str, Any]) -> Refund:
    values = {name: row[name] for name in _REFUND_FIELDS if name in row}
    values["merchant_id"] = str(values["merchant_id"])
    return Refund(status=RefundStatus(row["status"]), **values)


def merchant_from_row(row: dict[str, Any]) -> Merchant:
    """A merchant; its stored webhook secret goes to ``webhook_secret_sealed`` when sealed, or
    to ``webhook_secret`` when it is a plaintext row not yet sealed."""
    values = {name: row[name] for name in _MERCHANT_FIELDS if name in row}
    if row.get("fallback_processors") is not None:
        values["fallback_processors"] = tuple(row["fallback_processors"])
    stored = row.get("webhook_secret")
    if stored is not None and stored.startswith(SEALED_PREFIX):
        values["webhook_secret_sealed"] = stored
    else:
        values["webhook_secret"] = stored
    return Merchant(id=str(row["id"]), **values)


_API_KEY_FIELDS = "api_key secret_hash created_at last_used_at expires_at revoked_at".split()


def api_key_from_row(row: dict[str, Any]) -> ApiKey:
    values = {name: row[name] for name in _API_KEY_FIELDS if name in row}
    return ApiKey(id=str(row["id"]), merchant_id=str(row["merchant_id"]), **values)


def order_from_row(row: dict[str, Any]) -> Order:
    values = {name: row[name] for name in _ORDER_FIELDS if name in row}
    return Order(
        id=row["id"],
        merchant_id=str(row["merchant_id"]),
        status=OrderStatus(row["status"]),
        notes=row.get("notes") or {},
        **values,
    )


def attempt_from_row(row: dict[str, Any]) -> WebhookAttempt:
    return WebhookAttempt(**{name: row[name] for name in _ATTEMPT_FIELDS if name in row})


def webhook_log_from_row(
    row: dict[str, Any], attempts: list[WebhookAttempt] | tuple[WebhookAttempt, ...] = ()
) -> WebhookLog:
    values = {name: row[name] for name in _WEBHOOK_LOG_FIELDS if name in row}
    endpoint_id = row.get("endpoint_id")
    return WebhookLog(
        id=str(row["id"]),
        endpoint_id=str(endpoint_id) if endpoint_id is not None else None,
        url=row.get("url"),
        merchant_id=str(row["merchant_id"]),
        resource_id=row.get("resource_id"),
        status=DeliveryStatus(row["status"]),
        attempt_log=tuple(attempts),
        **values,
    )
