"""The worker's Huey consumer: SIGTERM and SIGINT (and SIGHUP) all stop it gracefully.

Huey's own consumer stops gracefully on SIGINT only and at once on SIGTERM, the signal every
process manager sends (systemd, Kubernetes, docker, ``paygate up``). Here either signal stops
the polling (no new task is taken) and lets the running tasks finish for up to
``stop_timeout`` seconds (``PAYGATE_STOP_TIMEOUT``); then the consumer returns. A second
signal stops at once. A task still running when the consumer returns dies with the
process: its row stays due in the database and a janitor dispatches it again (every job is safe
to run twice), so nothing is lost either way.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from huey.consumer import Consumer

log = logging.getLogger(__name__)

# SIGHUP too: Huey's own consumer re-executes itself on it; here the process manager (``paygate
# up``, systemd, Kubernetes) starts a new worker, so a hangup is a graceful stop like the others.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# A helper process of ``paygate worker`` (``paygate.supervisor.Helpers``) hears its parent's stop
# on these (graceful, then at once) and ignores SIGINT and SIGHUP: a terminal sends those to the
# whole process group, and the parent passes the stop on once. SIGTERM to a helper itself stops
# it gracefully (a second one at once), as any worker.
PARENT_STOP, PARENT_STOP_NOW = signal.SIGUSR1, signal.SIGUSR2
GROUP_SIGNALS = (signal.SIGINT, signal.SIGHUP)


class GracefulConsumer(Consumer):
    def __init__(
        self, huey, *, stop_timeout: float, on_stop=None, on_stop_now=None, helper=False, **flags
    ):
        super().__init__(huey, **flags)
        self.stop_timeout = stop_timeout
        # Called once when stopping starts (the worker stops its webhook consumer's polling at
        # the same moment, so both drain together rather than one after the other), and when
        # a second signal stops it at once (its helper processes are told the same).
        self.on_stop = on_stop
        self.on_stop_now = on_stop_now
        self.helper = helper
        # When the wait for running tasks ends (monotonic): what else drains in this process (the
        # webhook consumer) waits no longer than this. None: not stopping gracefully (yet).
        self.stop_deadline: float | None = None
        self.stop_signal: int | None = None
        self.stopped_at_once = False  # a second signal (or the parent's "now") ended the wait
        self._stop_requested = threading.Event()

    def _set_signal_handlers(self) -> None:
        if not self.helper:
            for signum in STOP_SIGNALS:
                signal.signal(signum, self._on_stop_signal)
            return
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(PARENT_STOP, self._on_parent_stop)
        signal.signal(PARENT_STOP_NOW, self._on_parent_stop)
        for signum in GROUP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    def hear_stop_signals(self) -> None:
        """Take the stop signals now, before ``run`` (which takes them again): a stop that
        comes before it makes ``run`` stop at once, gracefully."""
        self._set_signal_handlers()

    def _on_stop_signal(self, signum, frame) -> None:
        if self.stop_signal is not None:  # the second one: stop now
            if self.on_stop_now is not None:
                self.on_stop_now()
            raise KeyboardInterrupt
        self.stop_signal = signum
        self._stop_requested.set()

    def _on_parent_stop(self, signum, frame) -> None:
        """The parent's stop: graceful (repeated, or after a SIGTERM to this helper as well:
        nothing more), or at once."""
        if signum == PARENT_STOP_NOW:
            self.stop_signal = self.stop_signal or signum
            raise KeyboardInterrupt
        if self.stop_signal is None:
            self.stop_signal = signum
            self._stop_requested.set()

    def run(self) -> None:
        self.start()
        checked = time.monotonic()
        try:
            while not self._stop_requested.wait(0.1):
                if self._health_check and time.monotonic() >= checked + self._health_check_interval:
                    checked = time.monotonic()
                    self.check_worker_health()
            name = signal.Signals(self.stop_signal).name if self.stop_signal else "stop"
            self.stop_gracefully(name)
        except KeyboardInterrupt:
            self.stop_flag.set()
            self.stop_deadline = time.monotonic()  # nothing else waits either
            self.stopped_at_once = True
            log.warning(
                "second stop signal: stopping now; tasks still running stay due in the database "
                "and are dispatched again"
            )

    def stop_gracefully(self, why: str) -> bool:
        """Stop taking tasks and wait up to ``stop_timeout`` seconds for the running ones;
        whether every worker thread finished."""
        self.stop_flag.set()
        if self.on_stop is not None:
            self.on_stop()
        log.info("%s: no new tasks; waiting up to %.0f s for running ones", why, self.stop_timeout)
        deadline = self.stop_deadline = time.monotonic() + self.stop_timeout
        threads = [t for _, t in self.worker_threads] + [self.scheduler]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        running = sum(1 for _, t in self.worker_threads if t.is_alive())
        if running:
            log.warning(
                "%d task(s) still running after %.0f s; stopping anyway: they stay due in the "
                "database and are dispatched again",
                running,
                self.stop_timeout,
            )
            return False
        log.info("worker stopped: every running task finished")
        return True
