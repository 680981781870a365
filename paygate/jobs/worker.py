"""``paygate worker``: a Huey consumer plus the janitor, heartbeat and observer threads.

SIGTERM and SIGINT stop gracefully: no new task is taken and the running ones finish within
``PAYGATE_STOP_TIMEOUT`` (``paygate.jobs.consumer``); a second signal stops at once. Either way
nothing is lost, because every task's row stays due in the database until it is done.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import ProcessorUnreachable, ServiceUnavailable
from ..services import Context, processing, views
from . import heartbeat, metrics_server, webhook_consumer
from . import observers as observer_runners
from .consumer import GracefulConsumer
from .janitor import Janitor
from .queue import Queue

log = logging.getLogger(__name__)

OBSERVERS_STOP_SECONDS = 2.0
OUTAGES = (RedisConnectionError, RedisTimeoutError, ServiceUnavailable)


class OutageLogFilter(logging.Filter):
    """Redis or PostgreSQL being away is an outage, not a bug: Huey would log a traceback for
    every poll of every thread and every task that fails for it. Keep one line per kind every
    ``every`` seconds; the janitor re-dispatches the failed tasks from the record."""

    def __init__(self, every: float = 5.0):
        super().__init__()
        self.every = every
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, OUTAGES):
            return True
        key = (record.name, exc.__class__.__name__)
        now = time.monotonic()
        if now - self._last.get(key, float("-inf")) < self.every:
            return False
        self._last[key] = now
        record.msg = (
            f"{record.getMessage()} ({exc.__class__.__name__}: {exc}); "
            f"the same is muted for {self.every:.0f} s"
        )
        record.args = ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class ProcessorOutageFilter(logging.Filter):
    """A processor's expected outage (``ProcessorUnreachable``: its PSP provably got nothing)
    is one WARNING line, not a traceback at ERROR on every attempt. Payments log their own
    line (``payments.log_outage``); this catches the services that log the exception as it
    comes (a refund's job): the message, the processor's reason, and the next attempt time
    (the job's backoff after the attempt the message names)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, ProcessorUnreachable):
            return True
        attempts = [a for a in (record.args or ()) if isinstance(a, int) and a > 0]
        if attempts:
            delay = processing.backoff(attempts[-1])
            at = datetime.now(UTC) + timedelta(seconds=delay)
            when = f"next attempt at {views.iso(at)} (in {delay:.0f} s)"
        else:
            when = "next attempt on its backoff"
        record.msg = f"{record.getMessage()}: processor unreachable ({exc.reason}); {when}"
        record.args = ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


# The services whose jobs log a processor's exception with its traceback.
PROCESSOR_LOGGERS = ("paygate.services.refunds", "paygate.services.payments")


def quiet_outages() -> None:
    """Install the filter where Huey logs queue and schedule read errors and failed tasks,
    and the one for processor outages where the processor jobs log."""
    for name in ("huey", "huey.consumer.Worker", "huey.consumer.Scheduler"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, OutageLogFilter) for f in logger.filters):
            logger.addFilter(OutageLogFilter())
    for name in PROCESSOR_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ProcessorOutageFilter) for f in logger.filters):
            logger.addFilter(ProcessorOutageFilter())


# How the consumer polls and runs tasks (bench/ runs its Huey no-op ceiling with these too).
CONSUMER_FLAGS = {
    "worker_type": "thread",
    "periodic": False,
    "initial_delay": 0.01,
    "backoff": 1.5,
    "max_delay": 0.25,
    "check_worker_health": True,
}


# Huey's start banner, once per consumer (a worker process runs two: tasks and webhooks) and
# its list of registered task names: Paygate's own start lines say the threads of each.
_HUEY_START_LINES = (
    "The following commands are available",
    "Huey consumer started with",
    "Scheduler runs every",
    "Periodic tasks are",
)


def _not_hueys_start_lines(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_HUEY_START_LINES)


def quiet_task_logs() -> None:
    """Huey logs two INFO lines for every task ("Executing ...", "... executed in"): at
    thousands of tasks a second that is a few percent of the worker's CPU and a flood nobody
    reads. Its warnings and errors stay (a failing task still logs its traceback), and so do the
    consumer's own stop lines, but not its start banner (three lines per consumer, two consumers
    per process: "worker started" and "webhook consumer started" say the same) or its list of
    registered task names; ``PAYGATE_LOG_LEVEL=DEBUG`` brings everything back."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("huey").setLevel(logging.WARNING)
        consumer = logging.getLogger("huey.consumer")
        consumer.setLevel(logging.INFO)
        if _not_hueys_start_lines not in consumer.filters:
            consumer.addFilter(_not_hueys_start_lines)


def lower_priority(nice: int) -> None:
    """Run this process at ``nice`` (0-19) more than it was started with. On Linux a thread's
    priority is its own and a new thread inherits its creator's, so this is called before the
    worker starts any thread. The API then keeps its latency while a backlog drains on the same
    cores: the worker takes what the API leaves (docs/performance.md, "The worker's priority").

    With the kernel's automatic session groups (``sched_autogroup``), CPU is first shared
    between sessions and nice only orders threads within one; a worker that leads its own
    session (``paygate up`` and service managers start it so) lowers its session's weight too."""
    if nice <= 0:
        return
    nice = min(nice, 19)
    try:
        os.nice(nice)
    except OSError as exc:  # not permitted in this sandbox: run at the priority given
        log.warning("could not lower the worker's priority (%s)", exc)
    if os.getsid(0) == os.getpid():
        try:
            with open("/proc/self/autogroup", "w") as group:
                group.write(str(nice))
        except OSError:  # no autogroup (disabled, another kernel), or not permitted
            pass


def _helpers_ready(helpers, queue: Queue, settings) -> bool:
    """``/readyz``: every helper process runs and has beaten (so it takes tasks)."""
    if not helpers.running():
        return False
    names = [heartbeat.worker_name(pid) for pid in helpers.pids()]
    try:
        return heartbeat.all_beating(
            queue.huey.storage.conn, queue.heartbeat_key, names, settings.heartbeat_ttl_seconds
        )
    except OUTAGES:
        return False


def _stop_taking(state: metrics_server.WorkerState, webhooks, helpers) -> None:
    state.consuming = False  # /readyz: 503 from the moment no new task is taken
    webhooks.stop_taking()
    if helpers is not None:
        helpers.signal_stop()  # they drain at the same time


def run_worker(
    ctx: Context,
    queue: Queue,
    *,
    workers: int | None = None,
    janitor: bool = True,
    helpers=None,
    helper: bool = False,
) -> int:
    """Consume ``queue`` with ``ctx`` (both built by ``paygate.wiring``) until stopped; the
    database is already migrated (``paygate worker`` prepares it first). ``helpers``
    (``paygate.supervisor.Helpers``): the helper processes this one starts, stops and keeps
    running; ``helper``: this is one of them (its parent stops it). The exit status: 1 when a
    helper's crash loop stopped the worker."""
    settings = ctx.settings
    quiet_outages()
    if settings.job_lease_seconds <= settings.webhook_timeout_seconds:
        log.warning(
            "PAYGATE_JOB_LEASE_SECONDS (%s) should exceed PAYGATE_WEBHOOK_TIMEOUT (%s): a slow "
            "delivery outliving its lease is dispatched again while it still runs",
            settings.job_lease_seconds,
            settings.webhook_timeout_seconds,
        )
    stopping = threading.Event()
    state = metrics_server.WorkerState(
        settings.heartbeat_ttl_seconds,
        helpers=None if helpers is None else lambda: _helpers_ready(helpers, queue, settings),
    )
    server = metrics_server.start(ctx, state)  # /metrics, /livez, /readyz
    # A helper has neither: its parent's janitor sweeps for the host (a parent that dies takes
    # its helpers with it), and an observer runs in one process at a time anyway (its lease).
    if janitor and not helper:
        Janitor(ctx, queue.new_dispatcher()).start(stopping)
    # Apart from the Huey pool: an observer never holds a thread payments or webhooks need.
    runners = [] if helper else observer_runners.start(ctx, stopping)
    quiet_task_logs()
    webhooks = webhook_consumer.start(ctx, queue, CONSUMER_FLAGS)  # deliveries: own threads
    threads = workers or settings.worker_concurrency
    queue.huey.consumers = threads  # each takes its share of a backlog
    consumer = GracefulConsumer(
        queue.huey,
        stop_timeout=settings.stop_timeout_seconds,
        # Both stop polling, then both drain (and the helpers with them).
        on_stop=lambda: _stop_taking(state, webhooks, helpers),
        on_stop_now=None if helpers is None else lambda: helpers.signal_stop(now=True),
        helper=helper,
        workers=threads,
        **CONSUMER_FLAGS,
    )
    log.info(
        "worker started: %d threads; from a backlog a thread takes at most %d payment job(s) "
        "at once (PAYGATE_PAYMENT_BATCH) and a webhook thread %d delivery task(s) "
        "(PAYGATE_WEBHOOK_BATCH)",
        threads,
        settings.payment_batch,
        settings.webhook_batch,
    )
    # A worker that beats hears a stop: the first beat (the API's "worker running", a parent's
    # word that its helper is up) comes after the stop signals are this consumer's.
    consumer.hear_stop_signals()
    heartbeat.start_thread(
        queue.huey.storage.conn,
        queue.heartbeat_key,
        settings.heartbeat_interval_seconds,
        settings.heartbeat_ttl_seconds,
        stopping,
        on_beat=state.beat,
    )
    if helpers is not None:
        helpers.start()
        log.info("worker processes: this one and %d helper(s)", len(helpers))
    state.consuming = True
    try:
        consumer.run()
    finally:
        state.consuming = False
        # The deliveries drain within the same stop timeout (none at all after a second signal,
        # whether it came while the consumer drained or while the deliveries do).
        try:
            if server is not None:
                server.shutdown()
            deadline = consumer.stop_deadline
            webhooks.stop(
                None if deadline is None else max(0.0, deadline - time.monotonic()),
                timeout=0.0 if consumer.stopped_at_once else settings.stop_timeout_seconds,
            )
        except KeyboardInterrupt:  # the consumer's handler raises it on a second stop signal
            log.warning("second stop signal: stopping now")
            webhooks.stop(0.0, timeout=0.0)  # (it says what that means for the deliveries)
        stopping.set()
        for thread in runners:  # each gives its lease up, so another worker continues at once
            thread.join(OBSERVERS_STOP_SECONDS)
        if helpers is not None:
            helpers.signal_stop()  # (told already when the stop came by a signal)
            deadline = consumer.stop_deadline
            try:
                helpers.wait(0.0 if deadline is None else max(0.0, deadline - time.monotonic()))
            except KeyboardInterrupt:  # a second stop signal: they were told to stop now
                helpers.wait(0.0)
    return 1 if helpers is not None and helpers.crash_looped else 0
