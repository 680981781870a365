"""The observer runner: one thread per registered observer in each ``paygate worker``, apart
from the Huey pool, so a slow, hanging or failing observer delays nothing but itself.

Each runner loops: hold the observer's lease (of several workers one consumes an observer at a
time; a dead worker's lease runs out after ``lease`` seconds), read the next settled events
after its position, call ``observe(event)`` for each and move the position after each success.
On an exception it records the error and the attempt, logs one WARNING line, and retries the
same event after the back-off (``services.observers.BACKOFF_SECONDS``); the events after it wait,
so an observer sees them in order. ``observe`` runs in a call thread bounded by
``call_timeout``: one that does not return in time counts as a failure, and no new call starts
until it has returned. The runner polls every ``poll`` seconds while the log is quiet.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..db.events import Logged, LogPosition, log_position
from ..services import Context
from ..services import observers as service
from ..types import Event, Observer
from .heartbeat import worker_name

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
BATCH = 100
LEASE_SECONDS = 30.0
CALL_TIMEOUT_SECONDS = 20.0
DATABASE_RETRY_SECONDS = 1.0
STOP_CHECK_SECONDS = 0.1  # how often a runner waiting on a call looks at ``stopping``


class ObserveTimeout(Exception):
    """An ``observe`` call that did not return in time (recorded as the observer's failure)."""


STOPPED = ObserveTimeout("the worker is stopping")


@dataclass
class _Call:
    """One ``observe`` call in its own daemon thread (a hung call cannot be killed, only
    outlived)."""

    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


@dataclass
class ObserverRunner:
    """Feeds one observer from the event log; ``step()`` does one round and says how long to
    wait before the next; ``run()`` loops until ``stopping`` is set."""

    ctx: Context
    observer: Observer
    holder: str = field(default_factory=lambda: f"{worker_name()}:{secrets.token_hex(4)}")
    schedule: Sequence[float] = service.BACKOFF_SECONDS
    poll: float = POLL_SECONDS
    batch: int = BATCH
    lease: float = LEASE_SECONDS
    call_timeout: float = CALL_TIMEOUT_SECONDS
    clock: Callable[[], float] = time.monotonic
    stopping: threading.Event = field(default_factory=threading.Event)
    _position: LogPosition | None = None  # None: not holding the lease
    _attempts: int = 0
    _retry_at: float = 0.0  # clock() before which the failing event is not tried again
    _renewed_at: float = 0.0
    _call: _Call | None = None
    _db_failing: bool = False

    @property
    def name(self) -> str:
        return self.observer.name

    def step(self) -> float:
        """One round: claim or renew the lease, then feed a batch. Seconds to wait after."""
        if self._position is None or self.clock() - self._renewed_at > self.lease / 3:
            if not self._claim():
                return min(self.lease / 3, 1.0)  # another worker holds it: look again later
        now = self.clock()
        if now < self._retry_at:
            return min(self._retry_at - now, self.poll)
        events = service.next_events(self.ctx, self._position, self.batch)
        for logged in events:
            if self.stopping.is_set() or self._position is None:
                return 0.0
            if not self._feed(logged):
                return min(max(self._retry_at - self.clock(), 0.0), self.poll)
        return 0.0 if len(events) == self.batch else self.poll

    def _claim(self) -> bool:
        state = service.claim(self.ctx, self.name, self.holder, self.lease)
        if state is None:
            self._position = None
            return False
        if self._position is None:  # taken over: continue from the record
            self._attempts = state.attempts
            self._retry_at = self.clock() + state.retry_in if state.retry_in else 0.0
        self._position = log_position(state)
        self._renewed_at = self.clock()
        return True

    def _feed(self, logged: Logged) -> bool:
        """Call ``observe(event)``; record the outcome. True when the position moved on."""
        event = logged.event
        error = self._observe(event)
        if error is STOPPED:
            return False
        if error is None:
            self._attempts = 0
            self._retry_at = 0.0
            if service.observed(self.ctx, self.name, self.holder, logged, self.lease):
                self._position = logged.position
                self._renewed_at = self.clock()
                return True
            self._lost_lease()
            return False
        self._attempts += 1
        delay = service.delay_after(self._attempts, self.schedule)
        text = service.describe_error(error)
        self._retry_at = self.clock() + delay
        log.warning(
            "observer %s failed on event %s (%s, attempt %d): %s; next attempt in %.1f s",
            self.name,
            event.id,
            event.type,
            self._attempts,
            text,
            delay,
        )
        if service.failed(self.ctx, self.name, self.holder, event, text, delay, self.lease):
            self._renewed_at = self.clock()
        else:
            self._lost_lease()
        return False

    def _observe(self, event: Event) -> BaseException | None:
        if self._call is not None and not self._call.done.is_set():
            return ObserveTimeout(
                f"the previous call has not returned after {self.call_timeout:.0f} s"
            )
        call = _Call()

        def run() -> None:
            try:
                self.observer.observe(event)
            except BaseException as exc:  # whatever the plugin raises is its failure
                call.error = exc
            finally:
                call.done.set()

        self._call = call
        threading.Thread(target=run, name=f"paygate-observe-{self.name}", daemon=True).start()
        deadline = time.monotonic() + self.call_timeout
        while not call.done.wait(min(STOP_CHECK_SECONDS, max(deadline - time.monotonic(), 0))):
            if self.stopping.is_set():
                return STOPPED  # shutting down: neither a success nor the observer's failure
            if time.monotonic() >= deadline:
                return ObserveTimeout(f"observe did not return within {self.call_timeout:.0f} s")
        return call.error

    def _lost_lease(self) -> None:
        log.info("observer %s: another worker took it over", self.name)
        self._position = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                wait = self.step()
                if self._db_failing:
                    self._db_failing = False
                    log.info("observer %s reads the event log again", self.name)
            except Exception as exc:  # the database away: the record is unchanged, try again
                wait = DATABASE_RETRY_SECONDS
                if not self._db_failing:
                    self._db_failing = True
                    log.warning(
                        "observer %s cannot reach the event log (%s); retrying every %.0f s",
                        self.name,
                        exc.__class__.__name__,
                        wait,
                    )
            if wait:
                self.stopping.wait(wait)
        self.close()

    def close(self) -> None:
        """Give the lease up so another worker continues at once."""
        if self._position is None:
            return
        self._position = None
        try:
            service.release(self.ctx, self.name, self.holder)
        except Exception:  # the lease runs out by itself
            pass


def start(ctx: Context, stopping: threading.Event, **options) -> list[threading.Thread]:
    """One runner thread per registered observer; they stop when ``stopping`` is set."""
    threads = []
    for observer in ctx.plugins.observers.values():
        runner = ObserverRunner(
            ctx, observer, schedule=service.backoff(ctx.settings), stopping=stopping, **options
        )
        thread = threading.Thread(
            target=runner.run, name=f"paygate-observer-{observer.name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    if threads:
        log.info("observers started: %s", ", ".join(sorted(ctx.plugins.observers)))
    return threads
