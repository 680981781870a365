"""The one Huey instance. Tasks (``paygate.jobs.tasks``) carry ids only; the record is the DB.

The consumer is started by ``paygate worker`` (``paygate.jobs.worker``), which also runs the
janitor and the heartbeat threads.
"""

from __future__ import annotations

import os

from huey import RedisHuey
from redis import ConnectionPool

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Several gateways (or test runs) can share one Redis under different queue names.
QUEUE_NAME = os.environ.get("PAYGATE_QUEUE") or "paygate"


class PaygateHuey(RedisHuey):
    """RedisHuey without task revocation, which Paygate never uses.

    A job that should not run finds its row no longer due and returns, so nothing is ever
    revoked. Huey would still spend two Redis round trips on every task for revocation (read
    the flags before running, clear the task's flag after), as much as the dequeue itself;
    this class skips them and refuses to revoke.
    """

    def is_revoked(self, task, timestamp=None, peek=True) -> bool:
        return False

    def delete(self, key):
        if isinstance(key, str) and key.startswith("r:"):
            return False  # a task's revocation flag: never set, so nothing to clear
        return super().delete(key)

    def revoke(self, *args, **kwargs):
        raise NotImplementedError("Paygate does not revoke tasks: the database says what is due")

    revoke_all = revoke_by_id = revoke


huey = PaygateHuey(
    QUEUE_NAME,
    connection_pool=ConnectionPool.from_url(
        os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=10,
    ),
    results=False,
    store_none=False,
    utc=True,
    blocking=True,
    read_timeout=1,
)
