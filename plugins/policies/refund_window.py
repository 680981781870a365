"""An opt-in refund policy: refunds only within ``PAYGATE_REFUND_WINDOW_DAYS`` of the payment.

Disabled unless the variable is set to a positive number of days. A worked example of the
``paygate_refund_policy`` hook (see docs/plugins.md).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from paygate import Payment, RefundDenied, RefundRequest, hookimpl


def window_days() -> int | None:
    raw = os.environ.get("PAYGATE_REFUND_WINDOW_DAYS", "").strip()
    if not raw:
        return None
    try:
        days = int(raw)
    except ValueError:
        return None
    return days if days > 0 else None


@hookimpl
def paygate_refund_policy(payment: Payment, refund_request: RefundRequest, refunded_amount: int):
    days = window_days()
    if days is None or payment.created_at is None:
        return None
    if datetime.now(UTC) - payment.created_at > timedelta(days=days):
        return RefundDenied(f"Refunds are allowed only within {days} days of the payment")
    return None
