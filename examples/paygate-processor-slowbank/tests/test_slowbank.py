"""Slowbank against Paygate's contract kit (paygate.testing), plus what makes it Slowbank.

Run after ``pip install paygate-processor-slowbank`` (or ``pip install -e .``): the entry-point
tests check what the gateway itself would load.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import paygate_processor_slowbank
import pytest
from paygate_processor_slowbank import SlowbankProcessor

from paygate import ChargeRequest, Outcome, PluginError
from paygate.plugins import load_plugins
from paygate.testing import ProcessorContract, register_plugin

SETTLE_SECONDS = 0.3  # quick in tests; the gateway default is 3 s


class TestSlowbankHonoursTheProcessorContract(ProcessorContract):
    settle_timeout = 5.0

    def make_processor(self) -> SlowbankProcessor:
        return SlowbankProcessor(settle_seconds=SETTLE_SECONDS)

    def declining_payment(self, processor):
        return self.make_payment(processor, amount=50013)


contract = TestSlowbankHonoursTheProcessorContract()


def test_charge_answers_pending_even_when_the_bank_has_decided():
    processor = SlowbankProcessor(settle_seconds=SETTLE_SECONDS)
    payment = contract.make_payment(processor, created_at=datetime.now(UTC) - timedelta(hours=1))
    result = processor.charge(ChargeRequest(payment=payment, idempotency_key=payment.id))
    assert result.outcome == Outcome.PENDING
    assert result.retry_after > 0
    assert result.reference.startswith("slowbank_pay_")
    assert processor.sync(payment).outcome == Outcome.SUCCESS


def test_sync_stays_pending_until_the_settle_time_has_passed():
    processor = SlowbankProcessor(settle_seconds=60)
    payment = contract.make_payment(processor)
    result = processor.sync(payment)
    assert result.outcome == Outcome.PENDING
    assert 55 < result.retry_after <= 60


def test_amounts_ending_in_13_paise_are_declined_with_payment_failed():
    processor = SlowbankProcessor(settle_seconds=0)
    result = processor.sync(contract.make_payment(processor, amount=50013))
    assert result.outcome == Outcome.FAILED
    assert result.error_code == "PAYMENT_FAILED"
    assert "Slowbank" in result.error_description
    assert processor.sync(contract.make_payment(processor, amount=50014)).outcome == "success"


def test_only_upi_and_no_partial_refunds_are_declared():
    processor = SlowbankProcessor()
    assert processor.methods == {"upi"}
    assert processor.supports_partial_refund is False


def test_the_installed_entry_point_registers_slowbank(paygate_plugins):
    assert isinstance(paygate_plugins.processor("slowbank"), SlowbankProcessor)
    (row,) = [row for row in paygate_plugins.info() if row.name == "slowbank"]
    assert row.distribution == "paygate-processor-slowbank"
    assert row.version == paygate_processor_slowbank.__version__
    assert row.kind == "processor" and row.processors == ("slowbank",)


def test_the_settle_time_comes_from_the_environment(monkeypatch, paygate_settings):
    monkeypatch.setenv("SLOWBANK_SETTLE_SECONDS", "7.5")
    plugins = load_plugins(paygate_settings, entry_points=False)
    with register_plugin(plugins, paygate_processor_slowbank):
        assert plugins.processor("slowbank").settle_seconds == 7.5
    assert "slowbank" not in plugins.processors


def test_a_bad_settle_time_fails_at_start_up_naming_the_plugin(monkeypatch, paygate_settings):
    monkeypatch.setenv("SLOWBANK_SETTLE_SECONDS", "soon")
    plugins = load_plugins(paygate_settings, entry_points=False)
    with pytest.raises(PluginError, match="SLOWBANK_SETTLE_SECONDS") as raised:
        with register_plugin(plugins, paygate_processor_slowbank, name="slowbank"):
            pass
    assert "slowbank" in str(raised.value)
