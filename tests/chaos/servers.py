"""The chaos suite's own PostgreSQL and Valkey: servers these tests may stop, flush and wipe.

Never the machine's shared services (other test runs use them at the same time). Every fault
test gets a fresh database on the one embedded PostgreSQL, and the one embedded Valkey is
flushed between tests; a wiped Valkey's files are moved aside, not deleted, so the data-at-rest
scan still reads everything that was ever written to Redis.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from paygate.config import Settings
from paygate.db import connect
from paygate.db.merchants import seed_test_merchant
from paygate.db.migrate import migrate
from paygate.embedded import (
    EmbeddedPostgres,
    EmbeddedValkey,
    _pg_bin,
    free_port,
    postgres_in,
    valkey_in,
)
from tests.chaos import scan


@dataclass
class ChaosServers:
    root: Path
    pg: EmbeddedPostgres
    kv: EmbeddedValkey
    databases: list[str] = field(default_factory=list)
    wiped_redis_dirs: list[Path] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path) -> ChaosServers:
        root.mkdir(parents=True, exist_ok=True)
        pg = postgres_in(root / "state", free_port()).start()
        kv = valkey_in(root / "state", free_port()).start()
        return cls(root=root, pg=pg, kv=kv)

    def stop(self) -> None:
        self.kv.stop()
        self.pg.stop()

    # -- PostgreSQL ------------------------------------------------------------------------

    @property
    def admin_url(self) -> str:
        return self.pg.admin_url

    def database_url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.admin_url)._replace(path="/" + name))

    def create_database(self, name: str, webhook_url: str | None) -> str:
        """A fresh, migrated database with the seeded test merchant sending to ``webhook_url``."""
        with connect(self.admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        url = self.database_url(name)
        with connect(url) as conn:
            migrate(conn)
            seed_test_merchant(conn, Settings())
            conn.execute("UPDATE merchants SET webhook_url = %s", (webhook_url,))
        return url

    def stop_postgres(self) -> None:
        self.pg.stop()  # a fast shutdown: sessions are cut, committed data stays

    def start_postgres(self) -> None:
        self.pg.start()

    def pg_dump(self, name: str) -> bytes:
        """The whole database as SQL text, data included."""
        return subprocess.run(
            [str(_pg_bin() / "pg_dump"), "--no-owner", self.database_url(name)],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout

    # -- Valkey ----------------------------------------------------------------------------

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.kv.url, socket_connect_timeout=2, socket_timeout=5)

    def flush_redis(self) -> None:
        with self.redis() as conn:
            conn.flushall()

    def restart_redis_empty(self, down_seconds: float = 0.0) -> None:
        """Kill Valkey, move its files aside, and start it again with nothing in it."""
        self.kv.kill()
        wiped = self.root / f"redis-wiped-{len(self.wiped_redis_dirs) + 1}"
        shutil.move(str(self.kv.data_dir), str(wiped))
        self.wiped_redis_dirs.append(wiped)
        time.sleep(down_seconds)
        self.kv.start()

    def redis_files(self) -> list[Path]:
        """Every file Valkey ever persisted (append-only logs and snapshots), wiped ones too."""
        dirs = [self.kv.data_dir, *self.wiped_redis_dirs]
        return [p for d in dirs if d.exists() for p in sorted(d.rglob("*")) if p.is_file()]

    def redis_contents(self) -> bytes:
        """Every live key and value, as bytes."""
        with self.redis() as conn:
            return scan.redis_contents(conn)

    def log_files(self) -> list[Path]:
        """Server logs and every gateway process log written under the chaos root."""
        return sorted(p for p in self.root.rglob("*.log") if p.is_file())


def child_env(servers: ChaosServers, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a chaos gateway's processes: our servers, test mode, short leases."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYGATE_", "PYTEST_"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": servers.kv.url,
            "PAYGATE_QUEUE": "paygate-chaos",
            "PAYGATE_TESTS_CHILD": "1",
            "PAYGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
            "PAYGATE_LOG_LEVEL": "INFO",
            "TEST_MODE": "true",
            "WEBHOOK_RETRY_INTERVALS_TEST": "true",
            "TEST_PROCESSING_DELAY": "1000",
            # Short leases so a killed worker's claims expire within the test; the lease must
            # outlast the longest job, a webhook attempt (its timeout) included.
            "PAYGATE_JOB_LEASE_SECONDS": "5",
            "PAYGATE_WEBHOOK_TIMEOUT": "3",
            "PAYGATE_JANITOR_INTERVAL": "0.25",
            **overrides,
        }
    )
    return env
