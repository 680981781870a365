"""An opt-in refund policy: refunds only within ``PAYGATE_REFUND_WINDOW_DAYS`` of the payment.

The window is ``settings.refund_window_days``, which the hook receives with every call: 0 (the
default: the variable unset, empty or ``0``) means no window. Any other value than a whole
number of days is a configuration error that stops every process at start-up (``config.py``
names the variable); a negative window handed over in code (``Settings(refund_window_days=-1)``)
fails each refund loudly (500, with the reason in the log) rather than allowing it without the
window the operator asked for.
The worked example of docs/refund-policies.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from paygate import Payment, RefundDenied, RefundRequest, hookimpl

# Ships with the gateway. Its window stays the gateway setting PAYGATE_REFUND_WINDOW_DAYS, validated
# once per process at start-up (config.py), so it reads ``settings`` (deprecated for third-party
# plugins in 1.1, kept for the rest of 1.x); its scope is the operator's
# PAYGATE_PLUGIN_REFUND_WINDOW_MERCHANTS / _PROCESSORS (docs/refund-policies.md).
paygate_api = ">=1.1,<2"  # the plugin API it is written for (docs/plugins.md)
VARIABLE = "PAYGATE_REFUND_WINDOW_DAYS"


def window_days(settings) -> int | None:
    """The window ``settings`` (the gateway's read-only Settings) configure in days, or None
    when the policy is off."""
    days = settings.refund_window_days
    if not isinstance(days, int) or days < 0:
        raise ValueError(f"{VARIABLE} must be a whole number of days, not {days!r}")
    return days or None


def denial(days: int) -> RefundDenied:
    unit = "day" if days == 1 else "days"
    return RefundDenied(f"Refunds are allowed only within {days} {unit} of the payment")


@hookimpl
def paygate_refund_policy(
    payment: Payment, refund_request: RefundRequest, refunded_amount: int, settings
) -> RefundDenied | None:
    days = window_days(settings)
    if days is None or payment.created_at is None:
        return None
    if datetime.now(UTC) - payment.created_at > timedelta(days=days):
        return denial(days)
    return None
