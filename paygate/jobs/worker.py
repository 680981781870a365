"""``paygate worker``: a Huey consumer plus the janitor and heartbeat threads.

SIGINT stops gracefully (running tasks finish), SIGTERM stops at once; either way nothing is
lost, because every task's row stays due in the database until it is done.
"""

from __future__ import annotations

import logging
import threading

from ..config import Settings
from ..db import connect
from ..db.migrate import migrate
from . import heartbeat, huey, runtime
from .dispatcher import HueyDispatcher
from .janitor import Janitor

log = logging.getLogger(__name__)

# How the consumer polls and runs tasks (bench/ runs its Huey no-op ceiling with these too).
CONSUMER_FLAGS = {
    "worker_type": "thread",
    "periodic": False,
    "initial_delay": 0.01,
    "backoff": 1.5,
    "max_delay": 0.25,
    "check_worker_health": True,
}


def quiet_task_logs() -> None:
    """Huey logs two INFO lines for every task ("Executing ...", "... executed in"): at
    thousands of tasks a second that is a few percent of the worker's CPU and a flood nobody
    reads. Its warnings and errors stay (a failing task still logs its traceback), and so do the
    consumer's own start/stop lines; ``PAYGATE_LOG_LEVEL=DEBUG`` brings everything back."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("huey").setLevel(logging.WARNING)
        logging.getLogger("huey.consumer").setLevel(logging.INFO)


def run_worker(settings: Settings, *, workers: int | None = None, janitor: bool = True) -> None:
    from . import tasks  # noqa: F401 - registers the tasks with the Huey instance

    with connect(settings.database_url) as conn:
        migrate(conn)
    ctx = runtime.context()
    stopping = threading.Event()
    heartbeat.start_thread(
        huey.storage.conn,
        settings.heartbeat_interval_seconds,
        settings.heartbeat_ttl_seconds,
        stopping,
    )
    if janitor:
        Janitor(ctx, HueyDispatcher(settings.heartbeat_ttl_seconds)).start(stopping)
    quiet_task_logs()
    consumer = huey.create_consumer(
        workers=workers or settings.worker_concurrency, **CONSUMER_FLAGS
    )
    log.info("worker started: %d threads", workers or settings.worker_concurrency)
    try:
        consumer.run()
    finally:
        stopping.set()
