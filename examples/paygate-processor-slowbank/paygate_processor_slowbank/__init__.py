"""Slowbank: an example third-party Paygate processor that never knows at once.

It behaves unlike the built-in ``test`` processor on purpose, to exercise the other half of the
processor API:

- ``charge`` always answers *pending*, with ``retry_after`` set to the time left before the
  bank decides; only ``sync`` ever gives the outcome.
- The outcome is known ``SLOWBANK_SETTLE_SECONDS`` (default 3) after the payment was created.
- UPI only (``methods``), and no partial refunds (``supports_partial_refund = False``).
- Amounts whose paise end in ``13`` (for example 500.13 rupees, ``50013``) are declined.
- Refunds are processed ``SLOWBANK_SETTLE_SECONDS`` after they were created.

Everything is decided from the payment or refund alone (id, amount, creation time), never from
memory, so several worker processes always agree and asking twice never moves money twice.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

from paygate import (
    ChargeRequest,
    ChargeResult,
    Payment,
    PluginError,
    Refund,
    RefundResult,
    hookimpl,
)

__version__ = "0.1.0"
# The plugin API this plugin needs (the plugin API it is tested against): checked by the gateway at load.
paygate_api = ">=1.1,<2"

DEFAULT_SETTLE_SECONDS = 3.0
DECLINED_PAISE = 13  # amount % 100 == 13 is declined
MIN_RETRY_SECONDS = 0.05  # "pending" always names a positive wait


def _reference(kind: str, key: str) -> str:
    return f"slowbank_{kind}_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class SlowbankProcessor:
    name = "slowbank"
    methods = frozenset({"upi"})
    supports_partial_refund = False
    supports_manual_capture = False

    def __init__(self, settle_seconds: float = DEFAULT_SETTLE_SECONDS):
        if settle_seconds < 0:
            raise ValueError("settle_seconds must be >= 0")
        self.settle_seconds = settle_seconds

    def _remaining(self, started: datetime | None) -> float:
        if started is None:
            return 0.0
        return self.settle_seconds - (datetime.now(UTC) - started).total_seconds()

    def _wait(self, started: datetime | None) -> float:
        return max(self._remaining(started), MIN_RETRY_SECONDS)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        payment = request.payment
        return ChargeResult.pending(
            retry_after=self._wait(payment.created_at), reference=_reference("pay", payment.id)
        )

    def sync(self, payment: Payment) -> ChargeResult:
        reference = _reference("pay", payment.id)
        if self._remaining(payment.created_at) > 0:
            return ChargeResult.pending(
                retry_after=self._wait(payment.created_at), reference=reference
            )
        if payment.amount % 100 == DECLINED_PAISE:
            return ChargeResult.failed(
                error_description="Declined by Slowbank: insufficient funds", reference=reference
            )
        return ChargeResult.success(reference=reference)

    def capture(self, payment: Payment, amount: int) -> ChargeResult:
        # Slowbank captures at charge time; capture only confirms what is already done.
        return ChargeResult.success(reference=_reference("pay", payment.id))

    def refund(self, payment: Payment, refund: Refund) -> RefundResult:
        reference = _reference("rfnd", refund.id)
        if self._remaining(refund.created_at) > 0:
            return RefundResult.pending(
                retry_after=self._wait(refund.created_at), reference=reference
            )
        return RefundResult.processed(reference=reference)


def settle_seconds_from_env() -> float:
    raw = os.environ.get("SLOWBANK_SETTLE_SECONDS", "").strip()
    if not raw:
        return DEFAULT_SETTLE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise PluginError(f"SLOWBANK_SETTLE_SECONDS must be a number >= 0, got {raw!r}")
    return value


@hookimpl
def paygate_register_processors(register):
    register(SlowbankProcessor(settle_seconds=settle_seconds_from_env()))
