"""The ``test`` processor: the simulated bank of CONTRACT.md section 4, plus magic test values.

Outcomes are decided by the payment alone (its id seeds the "randomness", its creation time
starts the clock), so asking twice with the same idempotency key always gives the same answer
and a job re-run after a crash can never charge twice or flip an outcome. While the simulated
processing delay has not elapsed the processor answers *pending* with ``retry_after``, which the
worker honours without holding a thread for long delays.

Magic values (they win over ``TEST_MODE``, ``TEST_PAYMENT_SUCCESS`` and the success rates):

- UPI ``success@test`` always succeeds, ``failure@test`` always fails.
- Card ``4242 4242 4242 4242`` (visa ending 4242) always succeeds; ``4000 0000 0000 0002``
  (visa ending 0002) is always declined.
- A refund whose reason is ``fail@test`` is refused by the processor.

Set ``PAYGATE_TESTMODE_LEDGER`` (``settings.testmode_ledger``) to a file path and the processor
keeps a ledger that every worker process shares, so the crash-safety tests can see double
charges:

- The file gets one line per call: ``charge <key> <payment id>`` for the first charge with an
  idempotency key (the money moves), ``charge-repeat <key> <payment id>`` for a charge repeated
  with a key already seen (the bank answers from its record: no money moves), ``sync <payment
  id>``, ``capture <payment id>``, ``release <payment id>``, and ``refund``/``refund-repeat <refund id> <payment id>``.
- ``<ledger>.d/`` holds one file per money movement (``charge-<hash of key>``, ``refund-<...>``)
  created atomically (link, which fails if it exists), so "has this key moved money?" has one
  answer across processes and survives a SIGKILL at any instant. A payment charged under two
  different keys shows up as two files naming the same payment: that is a double charge.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import UTC, datetime

from paygate import (
    ChargeRequest,
    ChargeResult,
    Payment,
    Refund,
    RefundResult,
    hookimpl,
)

ALWAYS_SUCCEED_VPA = "success@test"
ALWAYS_FAIL_VPA = "failure@test"
ALWAYS_SUCCEED_CARD = ("visa", "4242")
ALWAYS_DECLINE_CARD = ("visa", "0002")
FAILING_REFUND_REASON = "fail@test"
REFUND_DELAY_MIN_MS = 3000
REFUND_DELAY_MAX_MS = 5000


def _unit(key: str, purpose: str) -> float:
    """A number in [0, 1) fixed by ``key``: the same payment always draws the same value."""
    digest = hashlib.sha256(f"{purpose}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class TestModeProcessor:
    name = "test"
    methods = frozenset({"upi", "card"})
    supports_partial_refund = True
    supports_manual_capture = False

    def __init__(self, settings):
        self.settings = settings
        self.ledger_path = settings.testmode_ledger

    # -- the decisions -----------------------------------------------------------------------

    def processing_delay_ms(self, key: str) -> int:
        s = self.settings
        if s.test_mode:
            return max(0, s.test_processing_delay_ms)
        low, high = sorted((s.processing_delay_min_ms, s.processing_delay_max_ms))
        return int(low + _unit(key, "delay") * (high - low))

    def refund_delay_ms(self, key: str) -> int:
        if self.settings.test_mode:
            return max(0, self.settings.test_processing_delay_ms)
        span = REFUND_DELAY_MAX_MS - REFUND_DELAY_MIN_MS
        return int(REFUND_DELAY_MIN_MS + _unit(key, "refund-delay") * span)

    def succeeds(self, payment: Payment) -> bool:
        if payment.method == "upi" and payment.vpa in (ALWAYS_SUCCEED_VPA, ALWAYS_FAIL_VPA):
            return payment.vpa == ALWAYS_SUCCEED_VPA
        card = (payment.card_network, payment.card_last4)
        if payment.method == "card" and card in (ALWAYS_SUCCEED_CARD, ALWAYS_DECLINE_CARD):
            return card == ALWAYS_SUCCEED_CARD
        if self.settings.test_mode:
            return self.settings.test_payment_success
        rate = (
            self.settings.upi_success_rate
            if payment.method == "upi"
            else self.settings.card_success_rate
        )
        return _unit(payment.id, "outcome") < rate

    # -- the Processor protocol ------------------------------------------------------------

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self._money("charge", request.idempotency_key, request.payment.id)
        return self._outcome(request.payment)

    def sync(self, payment: Payment) -> ChargeResult:
        self._note(f"sync {payment.id}")
        return self._outcome(payment)

    def capture(self, payment: Payment, amount: int) -> ChargeResult:
        """Any amount up to the payment's (the gateway checks it): captured at once."""
        self._note(f"capture {payment.id}")
        return ChargeResult.success(reference=f"test_cap_{payment.id}_{amount}")

    def release(self, payment: Payment, config=None) -> ChargeResult:
        """An uncaptured authorization given back at once."""
        self._note(f"release {payment.id}")
        return ChargeResult.success(reference=f"test_rel_{payment.id}")

    def refund(self, payment: Payment, refund: Refund) -> RefundResult:
        self._money("refund", refund.id, payment.id)
        remaining = _remaining_seconds(refund.created_at, self.refund_delay_ms(refund.id))
        if remaining > 0:
            return RefundResult.pending(retry_after=remaining)
        if refund.reason == FAILING_REFUND_REASON:
            return RefundResult.failed()  # REFUND_FAILED (docs/declines.md)
        return RefundResult.processed(reference=f"test_rfnd_{refund.id}")

    # -- helpers --------------------------------------------------------------------------

    def _outcome(self, payment: Payment) -> ChargeResult:
        remaining = _remaining_seconds(payment.created_at, self.processing_delay_ms(payment.id))
        if remaining > 0:
            return ChargeResult.pending(retry_after=remaining)
        if self.succeeds(payment):
            return ChargeResult.success(reference=f"test_{payment.id}")
        return ChargeResult.failed()  # PAYMENT_FAILED, the contract's generic decline

    def _money(self, operation: str, key: str, payment_id: str) -> None:
        """Record a call that moves money the first time its key is seen, and only then."""
        if not self.ledger_path:
            return
        record = f"{operation} {key} {payment_id}"
        directory = f"{self.ledger_path}.d"
        os.makedirs(directory, exist_ok=True)
        name = f"{operation}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"
        fd, draft = tempfile.mkstemp(dir=directory, prefix=".draft-")
        try:
            os.write(fd, record.encode())
            os.close(fd)
            os.link(draft, os.path.join(directory, name))  # atomic; fails if the key was seen
            first = True
        except FileExistsError:
            first = False
        finally:
            os.unlink(draft)
        self._note(record if first else f"{operation}-repeat {key} {payment_id}")

    def _note(self, line: str) -> None:
        if self.ledger_path:
            fd = os.open(self.ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, f"{line}\n".encode())  # one write() under O_APPEND: no interleaving
            finally:
                os.close(fd)


def _remaining_seconds(started: datetime | None, delay_ms: int) -> float:
    if started is None or delay_ms <= 0:
        return 0.0
    elapsed = (datetime.now(UTC) - started).total_seconds()
    return delay_ms / 1000 - elapsed


@hookimpl
def paygate_register_processors(register, settings):
    register(TestModeProcessor(settings))
