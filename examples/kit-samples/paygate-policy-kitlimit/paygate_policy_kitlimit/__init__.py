"""kitlimit: refunds may take at most half of a payment in total."""

from __future__ import annotations

from paygate import RefundDenied, hookimpl

__version__ = "0.1.0"
REASON = "Refunds may take at most half of a payment"


@hookimpl
def paygate_refund_policy(payment, refund_request, refunded_amount):
    if 2 * (refunded_amount + refund_request.amount) > payment.amount:
        return RefundDenied(REASON)
    return None
