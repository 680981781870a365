"""The built-in processor and notifier pass the same contract kit (paygate.testing) that third
parties run against theirs; and the kit itself catches a processor that breaks the contract."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from paygate import ChargeResult, Payment, RefundResult
from paygate.plugins import load_plugins
from paygate.testing import NotifierContract, ProcessorContract
from tests.fixtures import make_settings


class TestTestModeProcessorHonoursTheContract(ProcessorContract):
    """``test`` in TEST_MODE, with a short simulated delay so the pending path is exercised."""

    settle_timeout = 5.0

    def make_processor(self):
        settings = make_settings(TEST_PROCESSING_DELAY="300")
        return load_plugins(settings, entry_points=False).processor("test")

    def declining_payment(self, processor) -> Payment:
        return self.make_payment(processor, "upi", vpa="failure@test")

    def make_callback(self, processor, payment):
        # What the simulated bank's challenge page posts when the buyer approves.
        return processor.challenge_callback(payment.id, "approve")


class TestTestModeProcessorOutsideTestModeHonoursTheContract(ProcessorContract):
    """``test`` with random outcomes (decided per payment) and the magic values."""

    settle_timeout = 5.0

    def make_processor(self):
        settings = make_settings(
            TEST_MODE="false", PROCESSING_DELAY_MIN="100", PROCESSING_DELAY_MAX="300"
        )
        return load_plugins(settings, entry_points=False).processor("test")

    def succeeding_payment(self, processor) -> Payment:
        return self.make_payment(processor, "card", card_network="visa", card_last4="4242")

    def declining_payment(self, processor) -> Payment:
        return self.make_payment(processor, "card", card_network="visa", card_last4="0002")

    def make_refund(self, payment, amount=None, **changes):
        # Outside TEST_MODE a refund takes 3-5 s: one created 5 s ago is due at once.
        created_at = datetime.now(UTC) - timedelta(seconds=5)
        return super().make_refund(payment, amount, **{"created_at": created_at, **changes})


class TestWebhookNotifierHonoursTheContract(NotifierContract):
    def make_notifier(self):
        return load_plugins(make_settings(), entry_points=False).notifier("webhook")


# -- the kit catches what it should ---------------------------------------------------------


class FlipFlop:
    """Breaks the contract: a second instance (another worker process) flips the outcome."""

    name = "flipflop"
    methods = frozenset({"upi"})
    supports_partial_refund = True
    supports_manual_capture = False
    _instances = itertools.count()

    def __init__(self):
        self.succeeds = next(self._instances) % 2 == 0

    def charge(self, request):
        return self.sync(request.payment)

    def sync(self, payment):
        return ChargeResult.success() if self.succeeds else ChargeResult.failed()

    def capture(self, payment, amount):
        return ChargeResult.success()

    def refund(self, payment, refund):
        return RefundResult.processed()


class FlipFlopContract(ProcessorContract):
    def make_processor(self):
        return FlipFlop()


def test_the_kit_fails_a_processor_whose_instances_disagree():
    with pytest.raises(AssertionError, match="one instance said success, another"):
        FlipFlopContract().test_another_instance_gives_the_same_answer()


def test_the_kit_fails_a_pending_answer_that_asks_to_be_polled_in_a_hot_loop():
    class Impatient(FlipFlopContract):
        def make_processor(self):
            bank = FlipFlop()
            bank.charge = lambda request: ChargeResult.pending(retry_after=0)
            return bank

    with pytest.raises(AssertionError, match="retry_after must be None or > 0"):
        Impatient().test_charge_answers_a_valid_result_for_every_method()


def test_the_kit_fails_a_reference_the_record_cannot_hold():
    class Verbose(FlipFlopContract):
        def make_processor(self):
            bank = FlipFlop()
            bank.charge = lambda request: ChargeResult.success(reference="r" * 256)
            return bank

    with pytest.raises(AssertionError, match="at most 255 characters"):
        Verbose().test_charge_answers_a_valid_result_for_every_method()


def test_the_kit_fails_a_processor_that_never_settles():
    class Forever(FlipFlopContract):
        settle_timeout = 0.3
        poll_interval = 0.05

        def make_processor(self):
            bank = FlipFlop()
            bank.charge = bank.sync = lambda *_: ChargeResult.pending(retry_after=0.05)
            return bank

    with pytest.raises(AssertionError, match="still pending after 0.3 s"):
        Forever().test_a_pending_charge_becomes_final_through_sync()
