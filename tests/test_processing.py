"""Asking a processor until it knows: short waits inline, long or unnamed waits deferred."""

from __future__ import annotations

from paygate.services import processing
from paygate.types import ChargeResult
from tests.clock import FakeClock


def answers(clock: FakeClock, *results):
    """A processor's ask answering ``results`` in turn; ``calls`` holds when it was asked."""
    calls = []
    sequence = iter(results)

    def ask():
        calls.append(clock())
        return next(sequence)

    return ask, calls


def ask_until_known(ask, clock: FakeClock, **kwargs):
    return processing.ask_until_known(ask, ask, clock=clock, sleep=clock.sleep, **kwargs)


def test_a_zero_retry_after_is_not_a_busy_loop():
    clock = FakeClock()
    ask, calls = answers(clock, *[ChargeResult.pending(retry_after=0)] * 4, ChargeResult.success())
    result = ask_until_known(ask, clock, attempt=1, lease_seconds=30)
    assert result.outcome == "success"
    assert clock.sleeps == [processing.MIN_WAIT_SECONDS] * 4 and len(calls) == 5


def test_a_long_retry_after_goes_back_to_the_scheduler_at_once():
    clock = FakeClock()
    ask, calls = answers(clock, ChargeResult.pending(retry_after=60), ChargeResult.success())
    result = ask_until_known(ask, clock, attempt=1, lease_seconds=30)
    assert result.outcome == "pending" and len(calls) == 1 and clock.sleeps == []
    assert processing.wait_after(result, 1) == 60


def test_pending_without_retry_after_backs_off_and_then_defers():
    # attempt 3's backoff (5 s) is longer than an inline wait: the job defers after one ask.
    clock = FakeClock()
    ask, calls = answers(clock, ChargeResult.pending(), ChargeResult.success())
    result = ask_until_known(ask, clock, attempt=3, lease_seconds=30)
    assert result.outcome == "pending" and len(calls) == 1 and clock.sleeps == []
    assert processing.wait_after(result, 3) == 5.0


def test_inline_waits_never_outlive_half_the_lease():
    clock = FakeClock()
    ask, calls = answers(clock, *[ChargeResult.pending(retry_after=1.0)] * 10)
    started = clock()
    result = ask_until_known(ask, clock, attempt=1, lease_seconds=2.5)
    assert result.outcome == "pending"
    # One 1 s wait fits in half the lease (1.25 s); a second would not, so the job defers.
    assert clock.sleeps == [1.0] and len(calls) == 2
    assert clock() - started <= 2.5 * 0.5
