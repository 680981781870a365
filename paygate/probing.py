"""Checks with a client-side deadline, for ``/readyz`` and ``/health``.

A database that accepts TCP connections and never answers (a frozen server, a network
blackhole in front of a managed database) makes any query wait forever: no server-side
``statement_timeout`` helps when the server does not run. A probe therefore runs the check in a
helper thread and answers by its deadline whatever the check does:

- one attempt in flight at a time per check; callers arriving meanwhile share its answer, so a
  stuck check never piles up threads or connections;
- a caller waits at most until the attempt's deadline (counted from when the attempt started);
  past it the answer is "failed" at once, and the attempt is aborted (the check registers how:
  the database check shuts its connection's socket down, which wakes the stuck query);
- the next caller after an attempt ended starts a new one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Attempt:
    """One run of a check. The check may register an ``abort`` callable (``on_abort``) that
    unblocks it (it must not block); a caller past the deadline calls it (once)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done = threading.Event()
        self.result: Any = None
        self._lock = threading.Lock()
        self._abort: Callable[[], None] | None = None
        self.aborted = False

    def on_abort(self, abort: Callable[[], None] | None) -> None:
        """Register (or clear, with None) how to unblock the check; registered after the abort
        was asked, it runs at once."""
        with self._lock:  # held while aborting: a check that cleared its abort is safe
            self._abort = abort
            if abort is not None and self.aborted:
                _quietly(abort)

    def abort(self) -> None:
        with self._lock:
            if self.aborted:
                return
            self.aborted = True
            if self._abort is not None:
                _quietly(self._abort)


def _quietly(call: Callable[[], None]) -> None:
    try:
        call()
    except Exception:  # an abort that fails leaves the attempt stuck, still alone
        log.debug("probe abort failed", exc_info=True)


class BoundedCheck:
    """``check(attempt)`` in a daemon thread; ``__call__(deadline)`` returns its result, or
    ``failed`` when it raised or did not end within ``deadline`` seconds of its start."""

    def __init__(self, name: str, check: Callable[[Attempt], Any], failed: Any = False):
        self.name = name
        self._check = check
        self._failed = failed
        self._lock = threading.Lock()
        self._attempt: Attempt | None = None

    def __call__(self, deadline: float) -> Any:
        with self._lock:
            attempt = self._attempt
            if attempt is None:
                attempt = self._attempt = Attempt()
                threading.Thread(
                    target=self._run,
                    args=(attempt,),
                    name=f"paygate-check-{self.name}",
                    daemon=True,
                ).start()
        remaining = attempt.started + deadline - time.monotonic()
        if attempt.done.wait(max(0.0, remaining)):
            return attempt.result
        attempt.abort()
        return self._failed

    @property
    def in_flight(self) -> bool:
        return self._attempt is not None

    def _run(self, attempt: Attempt) -> None:
        try:
            attempt.result = self._check(attempt)
        except Exception as exc:
            log.debug("probe %s failed: %s", self.name, exc.__class__.__name__)
            attempt.result = self._failed
        finally:
            with self._lock:
                self._attempt = None
            attempt.done.set()


class Probes:
    """One ``BoundedCheck`` per name, made on first use (a process's probes share them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: dict[str, BoundedCheck] = {}

    def run(self, name: str, check: Callable[[Attempt], Any], deadline: float, failed: Any) -> Any:
        with self._lock:
            bounded = self._checks.get(name)
            if bounded is None:
                bounded = self._checks[name] = BoundedCheck(name, check, failed)
        return bounded(deadline)
