"""Worker liveness in Redis: each worker process scores itself in a sorted set every few
seconds; a worker counts as running while its score is fresher than the TTL."""

from __future__ import annotations

import os
import socket
import threading
import time

from redis import Redis

from . import QUEUE_NAME

KEY = f"{QUEUE_NAME}:workers"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(conn: Redis, name: str, ttl: float) -> None:
    now = time.time()
    pipe = conn.pipeline(transaction=False)
    pipe.zadd(KEY, {name: now})
    pipe.zremrangebyscore(KEY, "-inf", now - ttl * 6)
    pipe.execute()


def running(conn: Redis, ttl: float) -> bool:
    return conn.zcount(KEY, time.time() - ttl, "+inf") > 0


def stop(conn: Redis, name: str) -> None:
    conn.zrem(KEY, name)


def start_thread(conn: Redis, interval: float, ttl: float, stopping: threading.Event):
    name = worker_name()

    def loop() -> None:
        while not stopping.is_set():
            try:
                beat(conn, name, ttl)
            except Exception:  # Redis away: try again next beat
                pass
            stopping.wait(interval)
        try:
            stop(conn, name)
        except Exception:
            pass

    thread = threading.Thread(target=loop, name="paygate-heartbeat", daemon=True)
    thread.start()
    return thread
