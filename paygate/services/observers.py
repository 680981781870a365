"""Event observers' use cases: claiming an observer, reading its next events, recording success
or failure with back-off, and what ``paygate observers`` shows.

Delivery is at least once and in order: the position moves past an event only after
``observe`` returned, so a worker killed between the two repeats that event. A new observer
starts at the head of the log the first time a worker runs it (it receives what is recorded
from then on, as a new Stripe endpoint does, rather than years of history at once); to replay,
set its position back (``UPDATE observer_positions SET position_txid = '0', position = 0
WHERE observer = ...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..db import events as events_repo
from ..db.events import Logged, LogPosition, ObserverPosition
from ..types import Event
from . import Context, processing

# Seconds before the next attempt after the 1st, 2nd, ... failure in a row (the last repeats).
BACKOFF_SECONDS: tuple[float, ...] = (1, 2, 5, 10, 30, 60)
# With WEBHOOK_RETRY_INTERVALS_TEST (test-interval mode) the same shape, compressed.
BACKOFF_SECONDS_TEST: tuple[float, ...] = (0.2, 0.5, 1, 2)
ERROR_LIMIT = 500  # characters of an observer's error kept and logged


def backoff(settings) -> tuple[float, ...]:
    """The back-off schedule for these settings (compressed in test-interval mode)."""
    return BACKOFF_SECONDS_TEST if settings.webhook_retry_intervals_test else BACKOFF_SECONDS


def delay_after(attempts: int, schedule: Sequence[float]) -> float:
    """Seconds to wait after the ``attempts``-th failure in a row (1-based), capped."""
    return processing.backoff(attempts, schedule)


def describe_error(exc: BaseException) -> str:
    """One line naming the exception, short enough for a log line and the bookkeeping row."""
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= ERROR_LIMIT else line[: ERROR_LIMIT - 3] + "..."


def claim(ctx: Context, observer: str, holder: str, lease: float) -> ObserverPosition | None:
    with ctx.db.connection() as conn:
        return events_repo.claim(conn, observer, holder, lease)


def next_events(ctx: Context, position: LogPosition, limit: int) -> list[Logged]:
    """The settled events after ``position``, in the log's order."""
    with ctx.db.connection() as conn:
        return events_repo.read_after(conn, position, limit)


def last_recorded(ctx: Context) -> LogPosition:
    """Where the last committed event sits in the log (settled or not)."""
    with ctx.db.connection() as conn:
        return events_repo.last_recorded(conn)


def settled_head(ctx: Context) -> LogPosition:
    """Where the last settled event sits: ``next_events`` returns nothing after it yet."""
    with ctx.db.connection() as conn:
        return events_repo.head(conn)


def start_at(ctx: Context, observer: str, position: LogPosition) -> None:
    """Start ``observer`` at ``position``, or move it up there when it is behind."""
    with ctx.db.connection() as conn:
        events_repo.start_at(conn, observer, position)


def observed(ctx: Context, observer: str, holder: str, logged: Logged, lease: float) -> bool:
    """The observer finished ``logged``; False when this worker no longer holds it."""
    with ctx.db.connection() as conn:
        return events_repo.advance(conn, observer, holder, logged.position, lease)


def failed(
    ctx: Context, observer: str, holder: str, event: Event, error: str, delay: float, lease: float
) -> ObserverPosition | None:
    with ctx.db.connection() as conn:
        return events_repo.record_failure(conn, observer, holder, event.id, error, delay, lease)


def release(ctx: Context, observer: str, holder: str) -> None:
    with ctx.db.connection() as conn:
        events_repo.release(conn, observer, holder)


@dataclass(frozen=True)
class ObserverStatus:
    """An observer as ``paygate observers`` shows it: registered by a loaded plugin or not,
    and its bookkeeping (None before a worker first ran it)."""

    name: str
    installed: bool
    state: ObserverPosition | None


def status(ctx: Context) -> list[ObserverStatus]:
    """Every registered observer and every observer with bookkeeping, by name."""
    with ctx.db.connection() as conn:
        states = {state.observer: state for state in events_repo.positions(conn)}
    names = sorted(set(ctx.plugins.observers) | set(states))
    return [
        ObserverStatus(
            name=name,
            installed=name in ctx.plugins.observers,
            state=states.get(name),
        )
        for name in names
    ]
