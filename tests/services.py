"""Where the tests' PostgreSQL and Redis come from.

``DATABASE_URL`` / ``REDIS_URL`` set: use those servers (a fresh database is created on the
PostgreSQL server for this run and dropped afterwards). Unset: start the embedded servers, as
``paygate up`` does, in a temporary state directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg

from paygate.embedded import free_port, postgres_in, valkey_in


@dataclass
class TestServices:
    database_url: str
    redis_url: str
    admin_url: str | None = None
    database_name: str | None = None
    embedded: list = field(default_factory=list)
    state_dir: str | None = None

    @property
    def mode(self) -> str:
        return "embedded" if self.embedded else "external"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def start() -> TestServices:
    db_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    embedded = []
    state_dir = None
    if not db_url or not redis_url:
        state_dir = tempfile.mkdtemp(prefix="paygate-tests-")
    if not db_url:
        pg = postgres_in(state_dir, free_port()).start()
        embedded.append(pg)
        db_url = pg.url
    if not redis_url:
        kv = valkey_in(state_dir, free_port()).start()
        embedded.append(kv)
        redis_url = kv.url
    name = f"paygate_test_{secrets.token_hex(4)}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return TestServices(
        database_url=_with_database(db_url, name),
        redis_url=redis_url,
        admin_url=db_url,
        database_name=name,
        embedded=embedded,
        state_dir=state_dir,
    )


def stop(services: TestServices) -> None:
    if services.admin_url and services.database_name:
        try:
            with psycopg.connect(services.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{services.database_name}" WITH (FORCE)')
        except psycopg.Error:
            pass
    for server in reversed(services.embedded):
        server.stop()
    if services.state_dir:
        shutil.rmtree(services.state_dir, ignore_errors=True)
