"""Asking a processor until it knows: short waits inline, long or unnamed waits deferred."""

from __future__ import annotations

import time

from paygate.services import processing
from paygate.types import ChargeResult


def answers(*results):
    calls = []
    sequence = iter(results)

    def ask():
        calls.append(time.monotonic())
        return next(sequence)

    return ask, calls


def test_a_zero_retry_after_is_not_a_busy_loop():
    ask, calls = answers(*[ChargeResult.pending(retry_after=0)] * 4, ChargeResult.success())
    result = processing.ask_until_known(ask, ask, attempt=1, lease_seconds=30)
    assert result.outcome == "success"
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert len(gaps) == 4 and min(gaps) >= processing.MIN_WAIT_SECONDS * 0.9


def test_a_long_retry_after_goes_back_to_the_scheduler_at_once():
    ask, calls = answers(ChargeResult.pending(retry_after=60), ChargeResult.success())
    result = processing.ask_until_known(ask, ask, attempt=1, lease_seconds=30)
    assert result.outcome == "pending" and len(calls) == 1
    assert processing.wait_after(result, 1) == 60


def test_pending_without_retry_after_backs_off_and_then_defers():
    # attempt 3's backoff (5 s) is longer than an inline wait: the job defers after one ask.
    ask, calls = answers(ChargeResult.pending(), ChargeResult.success())
    result = processing.ask_until_known(ask, ask, attempt=3, lease_seconds=30)
    assert result.outcome == "pending" and len(calls) == 1
    assert processing.wait_after(result, 3) == 5.0


def test_inline_waits_never_outlive_half_the_lease():
    ask, calls = answers(*[ChargeResult.pending(retry_after=1.0)] * 10)
    started = time.monotonic()
    result = processing.ask_until_known(ask, ask, attempt=1, lease_seconds=2.5)
    assert result.outcome == "pending"
    assert time.monotonic() - started < 1.3 and len(calls) == 2
