"""Asking a processor until it knows, for every job a processor works on (payments, refunds).

A processor may answer *pending*. A short ``retry_after`` is waited out inside the job (within
half of the job's lease, so the lease never runs out under us); a longer one, or an answer that
names no wait, goes back to the scheduler: the row is deferred and the janitor dispatches it
again when it is due, so no worker thread sleeps for seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from ..types import Outcome

INLINE_WAIT_SECONDS = 2.0
# A processor answering "pending, ask again in 0 s" must not turn a worker into a busy loop.
MIN_WAIT_SECONDS = 0.05
SYNC_BACKOFF_SECONDS = (1, 2, 5, 10, 30, 60, 120, 300)


class Answer(Protocol):
    outcome: Outcome
    retry_after: float | None


A = TypeVar("A", bound=Answer)


def backoff(attempt: int, schedule: Sequence[float] = SYNC_BACKOFF_SECONDS) -> float:
    """Seconds before trying again after ``attempt`` (1-based) failed in a row: ``schedule``'s
    step for it, its last step once past the end (default: asking a processor again)."""
    return float(schedule[max(1, min(attempt, len(schedule))) - 1])


def wait_after(result: Answer, attempt: int) -> float:
    """How long to wait before asking again about a *pending* answer."""
    wait = result.retry_after if result.retry_after is not None else backoff(attempt)
    return max(wait, MIN_WAIT_SECONDS)


def ask_until_known(
    first: Callable[[], A],
    again: Callable[[], A],
    *,
    attempt: int,
    lease_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> A:
    """Call ``first``; while the answer is pending and the wait is short, wait and call
    ``again``. Returns the last answer, which is still pending when the wait was too long.
    Exceptions from the processor propagate: the caller defers, never guesses an outcome.
    ``clock``/``sleep`` are there for tests that step time by hand."""
    deadline = clock() + lease_seconds * 0.5
    result = first()
    asked = 0
    while result.outcome == Outcome.PENDING:
        if getattr(result, "next_action", None) is not None:
            break  # the buyer must act first: no use asking again now
        # Without a retry_after each inline ask backs off further, so the job soon defers.
        wait = wait_after(result, attempt + asked)
        if wait > INLINE_WAIT_SECONDS or clock() + wait > deadline:
            break
        sleep(wait)
        asked += 1
        result = again()
    return result
