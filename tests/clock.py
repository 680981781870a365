"""A clock the tests step by hand: code that takes ``clock``/``sleep`` runs instantly and the
test reads exactly how long it would have waited."""

from __future__ import annotations


class FakeClock:
    """``clock()`` is the current moment; ``clock.sleep(s)`` records the wait and moves on."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
