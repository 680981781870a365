"""Worker liveness in Redis: each worker process scores itself in a sorted set every few
seconds; a worker counts as running while its score is fresher than the TTL. The sorted set is
the queue's ``heartbeat_key`` (``<queue name>:workers``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

from redis import Redis


def worker_name(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def beat(conn: Redis, key: str, name: str, ttl: float) -> None:
    now = time.time()
    pipe = conn.pipeline(transaction=False)
    pipe.zadd(key, {name: now})
    pipe.zremrangebyscore(key, "-inf", now - ttl * 6)
    pipe.execute()


def running(conn: Redis, key: str, ttl: float) -> bool:
    return conn.zcount(key, time.time() - ttl, "+inf") > 0


def all_beating(conn: Redis, key: str, names: list[str], ttl: float) -> bool:
    """Whether every worker in ``names`` (``worker_name``s) beat within ``ttl``."""
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.zscore(key, name)
    since = time.time() - ttl
    return all(score is not None and score > since for score in pipe.execute())


def running_on(conn: Redis, key: str, ttl: float, host: str) -> bool:
    """Whether a worker on ``host`` (``worker_name``'s first part) beat within ``ttl``."""
    names = conn.zrangebyscore(key, time.time() - ttl, "+inf")
    return any(name.decode().rpartition(":")[0] == host for name in names)


def stop(conn: Redis, key: str, name: str) -> None:
    conn.zrem(key, name)


def start_thread(
    conn: Redis,
    key: str,
    interval: float,
    ttl: float,
    stopping: threading.Event,
    on_beat: Callable[[], None] | None = None,
) -> threading.Thread:
    """Beat every ``interval`` seconds until ``stopping``; ``on_beat`` after each beat that
    reached Redis (the worker's ``/readyz``)."""
    name = worker_name()

    def loop() -> None:
        while not stopping.is_set():
            try:
                beat(conn, key, name, ttl)
            except Exception:  # Redis away: try again next beat
                pass
            else:
                if on_beat is not None:
                    on_beat()
            stopping.wait(interval)
        try:
            stop(conn, key, name)
        except Exception:
            pass

    thread = threading.Thread(target=loop, name="paygate-heartbeat", daemon=True)
    thread.start()
    return thread
