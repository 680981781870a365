"""B6's Huey ceiling: a no-op task on Paygate's own Huey instance and consumer flags.

``python -m bench.hueynoop consume WORKERS`` runs a consumer exactly as ``paygate worker`` does
(``paygate.jobs.worker.CONSUMER_FLAGS``), on the queue named by ``PAYGATE_QUEUE``;
``python -m bench.hueynoop enqueue COUNT`` puts COUNT tasks on it. The task only counts itself
(one Redis INCR) so the driver can see the drain finish.
"""

from __future__ import annotations

import sys

from paygate.cli import _setup_logging
from paygate.config import Settings
from paygate.jobs.queue import new_huey
from paygate.jobs.worker import CONSUMER_FLAGS, quiet_task_logs

SETTINGS = Settings.from_env()
huey = new_huey(SETTINGS)

COUNTER = f"bench:{huey.name}:done"
READY = f"bench:{huey.name}:ready"


@huey.task()
def noop() -> None:
    huey.storage.conn.incr(COUNTER)


def consume(workers: int) -> None:
    _setup_logging(
        SETTINGS.log_level
    )  # the same logging as ``paygate worker``: its cost is part of the ceiling
    quiet_task_logs()
    huey.storage.conn.set(READY, 1)
    huey.create_consumer(workers=workers, **CONSUMER_FLAGS).run()


def enqueue(count: int) -> None:
    for _ in range(count):
        noop()


if __name__ == "__main__":
    command, number = sys.argv[1], int(sys.argv[2])
    consume(number) if command == "consume" else enqueue(number)
