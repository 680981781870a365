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

huey = RedisHuey(
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
