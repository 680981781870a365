"""Database access: the connection pool and the translation of driver errors into domain ones.

Connections are autocommit: a single statement is its own transaction, and multi-statement
work uses ``Database.transaction()``. Rows come back as dicts; repositories turn them into
``paygate.types``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from ..errors import ServiceUnavailable

log = logging.getLogger(__name__)


class Database:
    """A lazily opened pool. Open it after gunicorn forks (``open()`` is idempotent)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, name: str = "paygate"):
        self.url = url
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            name=name,
            timeout=5.0,
            kwargs={"autocommit": True, "row_factory": dict_row},
            check=psycopg_pool.ConnectionPool.check_connection,
            reconnect_timeout=0,
        )
        self._opened = False

    def open(self) -> Database:
        if not self._opened:
            self.pool.open(wait=False)
            self._opened = True
        return self

    def close(self) -> None:
        if self._opened:
            self.pool.close()
            self._opened = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        self.open()
        with translate_errors(), self.pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        with self.connection() as conn, conn.transaction():
            yield conn

    def ping(self) -> bool:
        try:
            with self.connection() as conn:
                conn.execute("SELECT 1")
            return True
        except ServiceUnavailable:
            return False


@contextmanager
def translate_errors() -> Iterator[None]:
    """The database being unreachable is a 503 for the caller, never a 500 with a traceback."""
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InterfaceError) as exc:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        raise ServiceUnavailable() from exc


def connect(url: str) -> psycopg.Connection:
    """A single autocommit connection outside any pool (CLI, migrations, tests)."""
    try:
        return psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(f"cannot connect to the database: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
