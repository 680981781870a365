"""Row-to-type conversion shared by the repositories."""

from __future__ import annotations

from typing import Any

from ..types import Payment, PaymentStatus, Refund, RefundStatus

_PAYMENT_FIELDS = (
    "id merchant_id order_id amount currency method processor vpa card_network card_last4 "
    "captured amount_refunded error_code error_description processor_reference created_at "
    "updated_at captured_at"
).split()
_REFUND_FIELDS = (
    "id payment_id merchant_id amount reason error_code error_description processor_reference "
    "created_at processed_at updated_at"
).split()


def payment_from_row(row: dict[str, Any]) -> Payment:
    values = {name: row[name] for name in _PAYMENT_FIELDS if name in row}
    values["merchant_id"] = str(values["merchant_id"])
    return Payment(status=PaymentStatus(row["status"]), **values)


def refund_from_row(row: dict[str, Any]) -> Refund:
    values = {name: row[name] for name in _REFUND_FIELDS if name in row}
    values["merchant_id"] = str(values["merchant_id"])
    return Refund(status=RefundStatus(row["status"]), **values)
