"""``ProcessorContract``: the checks every processor plugin must pass, for authors to re-run."""

from __future__ import annotations

import math
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from ..config import TEST_MERCHANT_ID
from ..types import (
    ChargeRequest,
    ChargeResult,
    Outcome,
    Payment,
    PaymentStatus,
    Processor,
    Refund,
    RefundResult,
    RefundStatus,
)

MAX_REFERENCE_LENGTH = 255  # the width of the record's processor_reference column
_ALPHABET = string.ascii_letters + string.digits
Answer = TypeVar("Answer", ChargeResult, RefundResult)


def new_id(prefix: str) -> str:
    """An id shaped like the gateway's (``pay_`` + 16 characters)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def check_answer(result: Any, expected: type, operation: str) -> None:
    """Fail unless ``result`` is a well-formed ``expected`` (ChargeResult or RefundResult)."""
    assert isinstance(result, expected), (
        f"{operation} must return a {expected.__name__}, got {result!r}"
    )
    assert result.outcome in set(Outcome), f"{operation}: unknown outcome {result.outcome!r}"
    if result.outcome == Outcome.PENDING:
        wait = result.retry_after
        assert wait is None or (
            isinstance(wait, int | float) and math.isfinite(wait) and wait > 0
        ), f"{operation}: a pending answer's retry_after must be None or > 0 s, got {wait!r}"
    if result.outcome == Outcome.FAILED:
        for attr in ("error_code", "error_description"):
            value = getattr(result, attr)
            assert isinstance(value, str) and value, f"{operation}: a failure needs its {attr}"
    reference = result.reference
    assert reference is None or (
        isinstance(reference, str) and len(reference) <= MAX_REFERENCE_LENGTH
    ), f"{operation}: reference must be a string of at most 255 characters, got {reference!r}"


class ProcessorContract:
    """What every processor must do. Subclass it as ``class TestMyProcessor(ProcessorContract)``.

    Implement :meth:`make_processor`. Override :meth:`succeeding_payment` when your processor
    does not approve :meth:`make_payment`'s default payment, and :meth:`declining_payment` to
    have the decline path checked too. Make the processor settle quickly in tests: every
    pending outcome must become final within ``settle_timeout`` seconds.
    """

    settle_timeout: float = 10.0
    #: the longest pause between two polls; longer ``retry_after`` hints are cut to it
    poll_interval: float = 0.25

    def make_processor(self) -> Processor:
        """A fresh processor instance, configured as a worker process would configure it."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_processor()")

    def make_payment(self, processor: Processor, method: str | None = None, **changes) -> Payment:
        """A new pending payment for ``processor``, as the record holds it."""
        method = method or sorted(processor.methods)[0]
        now = datetime.now(UTC)
        payment = Payment(
            id=new_id("pay_"),
            merchant_id=TEST_MERCHANT_ID,
            order_id=new_id("order_"),
            amount=50000,
            currency="INR",
            method=method,
            status=PaymentStatus.PENDING,
            processor=processor.name,
            vpa="user@paytm" if method == "upi" else None,
            card_network="visa" if method == "card" else None,
            card_last4="1111" if method == "card" else None,
            created_at=now,
            updated_at=now,
        )
        return replace(payment, **changes)

    def make_refund(self, payment: Payment, amount: int | None = None, **changes) -> Refund:
        now = datetime.now(UTC)
        refund = Refund(
            id=new_id("rfnd_"),
            payment_id=payment.id,
            merchant_id=payment.merchant_id,
            amount=payment.amount if amount is None else amount,
            reason=None,
            status=RefundStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        return replace(refund, **changes)

    def succeeding_payment(self, processor: Processor) -> Payment:
        """A payment ``processor`` approves (default: :meth:`make_payment`)."""
        return self.make_payment(processor)

    def declining_payment(self, processor: Processor) -> Payment | None:
        """A payment ``processor`` declines, or None to skip the decline checks."""
        return None

    # -- how the worker asks ------------------------------------------------------------------

    def settle(self, first: Callable[[], Answer], again: Callable[[], Answer], what: str) -> Answer:
        """Ask ``first``, then ``again`` while the answer is pending, as the worker does."""
        deadline = time.monotonic() + self.settle_timeout
        result = first()
        expected = ChargeResult if isinstance(result, ChargeResult) else RefundResult
        check_answer(result, expected, what)
        while result.outcome == Outcome.PENDING:
            assert time.monotonic() < deadline, (
                f"{what} still pending after {self.settle_timeout} s: make the processor settle "
                "faster in make_processor() or raise settle_timeout"
            )
            time.sleep(min(result.retry_after or self.poll_interval, self.poll_interval))
            result = again()
            check_answer(result, expected, what)
        return result

    def charge_until_final(self, processor: Processor, payment: Payment) -> ChargeResult:
        """Charge once, then sync until the outcome is final."""
        request = ChargeRequest(payment=payment, idempotency_key=payment.id)
        first = processor.charge(request)
        check_answer(first, ChargeResult, "charge")
        return self.settle(lambda: first, lambda: processor.sync(payment), "charge then sync")

    def settled_payment(self, processor: Processor) -> tuple[Payment, ChargeResult]:
        payment = self.succeeding_payment(processor)
        result = self.charge_until_final(processor, payment)
        assert result.outcome == Outcome.SUCCESS, (
            f"succeeding_payment() ended {result.outcome}: override it to return a payment your "
            "processor approves"
        )
        return replace(
            payment, status=PaymentStatus.SUCCESS, processor_reference=result.reference
        ), result

    # -- the contract -------------------------------------------------------------------------

    def test_declares_name_methods_and_capabilities(self):
        processor = self.make_processor()
        assert isinstance(processor, Processor), "missing part of paygate.Processor"
        assert isinstance(processor.name, str) and processor.name.strip() == processor.name != ""
        methods = processor.methods
        assert not isinstance(methods, str) and methods, "methods: a non-empty set of names"
        assert all(isinstance(m, str) and m for m in methods), f"bad methods {methods!r}"
        assert isinstance(processor.supports_partial_refund, bool)
        assert isinstance(processor.supports_manual_capture, bool)

    def test_charge_answers_a_valid_result_for_every_method(self):
        processor = self.make_processor()
        for method in sorted(processor.methods):
            payment = self.make_payment(processor, method)
            result = processor.charge(ChargeRequest(payment=payment, idempotency_key=payment.id))
            check_answer(result, ChargeResult, f"charge ({method})")

    def test_a_pending_charge_becomes_final_through_sync(self):
        processor = self.make_processor()
        result = self.charge_until_final(processor, self.succeeding_payment(processor))
        assert result.outcome in (Outcome.SUCCESS, Outcome.FAILED)

    def test_succeeding_payment_succeeds(self):
        payment, result = self.settled_payment(self.make_processor())
        assert payment.status == PaymentStatus.SUCCESS and result.outcome == Outcome.SUCCESS

    def test_declining_payment_fails_with_an_error_code(self):
        processor = self.make_processor()
        payment = self.declining_payment(processor)
        if payment is None:
            pytest.skip("declining_payment() not provided")
        result = self.charge_until_final(processor, payment)
        assert result.outcome == Outcome.FAILED, f"declining_payment() ended {result.outcome}"

    def test_a_final_outcome_never_changes(self):
        processor = self.make_processor()
        for payment in filter(
            None, (self.succeeding_payment(processor), self.declining_payment(processor))
        ):
            first = self.charge_until_final(processor, payment)
            repeated = self.charge_until_final(processor, payment)  # same idempotency key
            synced = processor.sync(payment)
            for later in (repeated, synced):
                assert (later.outcome, later.error_code) == (first.outcome, first.error_code), (
                    f"payment {payment.id} was {first.outcome}, later {later.outcome}"
                )

    def test_another_instance_gives_the_same_answer(self):
        """Several worker processes each build their own processor: they must agree."""
        one, other = self.make_processor(), self.make_processor()
        payment = self.succeeding_payment(one)
        first = self.charge_until_final(one, payment)
        seen = self.settle(lambda: other.sync(payment), lambda: other.sync(payment), "sync")
        assert seen.outcome == first.outcome, f"one instance said {first.outcome}, another {seen}"

    def test_capture_answers_a_final_result(self):
        processor = self.make_processor()
        payment, _ = self.settled_payment(processor)
        result = processor.capture(payment, payment.amount)
        check_answer(result, ChargeResult, "capture")
        assert result.outcome != Outcome.PENDING, "capture must answer success or failed"

    def test_full_refund_is_processed_and_repeats_give_the_same_answer(self):
        processor = self.make_processor()
        payment, _ = self.settled_payment(processor)
        refund = self.make_refund(payment)
        ask = lambda: processor.refund(payment, refund)  # noqa: E731 - the worker's poll
        result = self.settle(ask, ask, "refund")
        assert result.outcome == Outcome.SUCCESS, f"full refund ended {result.outcome}"
        again = processor.refund(payment, refund)  # the same refund id: no second refund
        assert again.outcome == Outcome.SUCCESS

    def test_partial_refund_when_supported(self):
        processor = self.make_processor()
        if not processor.supports_partial_refund:
            pytest.skip("supports_partial_refund is False: the core refunds only in full")
        payment, _ = self.settled_payment(processor)
        refund = self.make_refund(payment, payment.amount // 2)
        ask = lambda: processor.refund(payment, refund)  # noqa: E731
        assert self.settle(ask, ask, "partial refund").outcome == Outcome.SUCCESS
