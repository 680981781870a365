"""An opt-in refund policy: refunds only within ``PAYGATE_REFUND_WINDOW_DAYS`` of the payment.

Disabled unless the variable is set to a positive whole number of days (unset, empty or ``0``
means no window). Any other value is a configuration error: every process refuses to start
(the plugin fails to load, and start-up names it), and if the variable is changed under a
running process, refunds fail loudly (500, with the reason in the log) rather than being allowed
without the window the operator asked for.
The worked example of docs/refund-policies.md.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from paygate import Payment, RefundDenied, RefundRequest, hookimpl

VARIABLE = "PAYGATE_REFUND_WINDOW_DAYS"


def window_days() -> int | None:
    """The configured window in days, or None when the policy is off."""
    raw = os.environ.get(VARIABLE, "").strip()
    if not raw:
        return None
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"{VARIABLE} must be a whole number of days, got {raw!r}") from None
    if days < 0:
        raise ValueError(f"{VARIABLE} must not be negative, got {raw!r}")
    return days or None


def denial(days: int) -> RefundDenied:
    unit = "day" if days == 1 else "days"
    return RefundDenied(f"Refunds are allowed only within {days} {unit} of the payment")


# Read once at load so a bad value stops start-up with a clear message, not the first refund.
window_days()


@hookimpl
def paygate_refund_policy(
    payment: Payment, refund_request: RefundRequest, refunded_amount: int
) -> RefundDenied | None:
    days = window_days()
    if days is None or payment.created_at is None:
        return None
    if datetime.now(UTC) - payment.created_at > timedelta(days=days):
        return denial(days)
    return None
