"""The webhook event catalogue: every event Paygate sends, what it means, and its envelope.

The only place an event name is written. Services emit these constants through ``envelope``;
the dashboard's docs page renders ``CATALOGUE``; ``tests/test_event_catalogue.py`` fails when
the services, docs/webhooks.md, the dashboard or the OpenAPI document list a different set.
"""

from __future__ import annotations

import time
from typing import Any

PAYMENT_CREATED = "payment.created"
PAYMENT_PENDING = "payment.pending"
PAYMENT_SUCCESS = "payment.success"
PAYMENT_FAILED = "payment.failed"
PAYMENT_CAPTURED = "payment.captured"
PAYMENT_RELEASED = "payment.released"
REFUND_CREATED = "refund.created"
REFUND_PROCESSED = "refund.processed"
REFUND_FAILED = "refund.failed"
WEBHOOK_TEST = "webhook.test"

# (name, meaning), in the order a payment lives through them (CONTRACT.md section 5).
CATALOGUE: tuple[tuple[str, str], ...] = (
    (PAYMENT_CREATED, "A payment was created (status pending)."),
    (PAYMENT_PENDING, "The payment is being processed."),
    (PAYMENT_SUCCESS, "The payment succeeded; fulfil the order."),
    (PAYMENT_FAILED, "The payment failed; error_code and error_description say why."),
    (
        PAYMENT_CAPTURED,
        "A successful payment was captured (amount_captured says how much; a capture whose "
        "outcome was not known at once is sent when the processor confirms it).",
    ),
    (
        PAYMENT_RELEASED,
        "An uncaptured authorization was given back to the buyer (released_at is set); it "
        "can no longer be captured or refunded.",
    ),
    (REFUND_CREATED, "A refund was created (status pending)."),
    (REFUND_PROCESSED, "The refund reached the buyer (processed_at is set)."),
    (REFUND_FAILED, "The processor refused the refund; error_code and error_description say why."),
    (WEBHOOK_TEST, "Sent by the Send test webhook button or POST /api/v1/webhooks/test."),
)
NAMES: tuple[str, ...] = tuple(name for name, _ in CATALOGUE)


def envelope(name: str, data: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The body of one event: ``{"event", "timestamp" (Unix seconds), "data"}``."""
    if name not in NAMES:
        raise ValueError(f"{name!r} is not in the event catalogue")
    return {"event": name, "timestamp": int(now if now is not None else time.time()), "data": data}
