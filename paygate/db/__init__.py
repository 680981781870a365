"""Database access: the connection pool and the translation of driver errors into domain ones.

Connections are autocommit: a single statement is its own transaction, and multi-statement
work uses ``Database.transaction()``. Rows come back as dicts; repositories turn them into
``paygate.types``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from ..errors import DATABASE_UNREACHABLE, ServiceUnavailable
from ..probing import Attempt, BoundedCheck

log = logging.getLogger(__name__)

# A connection that came back to the pool this recently is alive: checking it again would cost
# a round trip on every checkout for nothing. Older ones are checked before use (HikariCP's rule,
# with its 0.5 s window doubled).
CHECK_IDLE_AFTER_SECONDS = 1.0


def lower_backend_priority(conn: psycopg.Connection, nice: int) -> bool:
    """Run the PostgreSQL backend serving ``conn`` at ``nice`` when it runs on this machine: the
    worker's statements then yield the CPU to the API's (docs/performance.md, "The worker's
    priority"). Only a TCP connection whose backend is provably ours is touched: the process
    must be a PostgreSQL backend whose title names this connection's own client address and
    port (a database in a container, or on another host, has no such process here). False
    when nothing was changed (not local, not permitted, no process titles)."""
    try:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return False
            client = sock.getsockname()
        pid = conn.info.backend_pid
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            title = fh.read().decode("utf-8", "replace")
        if not title.startswith("postgres:") or f"({client[1]})" not in title:
            return False
        os.setpriority(os.PRIO_PROCESS, pid, min(nice, 19))
        return True
    except (OSError, psycopg.Error):
        return False


def check_if_idle(conn: psycopg.Connection) -> None:
    """The pool's ``check``: a round trip only for a connection idle long enough to have died
    (server restarted, network cut). A connection that broke in use is discarded by the pool."""
    idle = time.monotonic() - getattr(conn, "_paygate_returned_at", 0.0)
    if idle >= CHECK_IDLE_AFTER_SECONDS:
        psycopg_pool.ConnectionPool.check_connection(conn)


# While the database is known to be away, one caller at a time, at most this often, tries a
# fresh connection; callers in between are answered ServiceUnavailable at once instead of each
# waiting out the pool's timeout (which would pile requests up behind an outage).
PROBE_EVERY_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 5

# psycopg's own default: a statement run this many times on one connection is prepared there.
DEFAULT_PREPARE_THRESHOLD = 5


def prepare_threshold(setting: int) -> int | None:
    """psycopg's ``prepare_threshold`` for ``PAYGATE_DB_PREPARE_THRESHOLD``: a negative setting
    is None, never prepare (a transaction-mode PgBouncer may run each statement on another server
    connection, where a statement prepared on the first does not exist)."""
    return None if setting < 0 else setting


class Database:
    """A lazily opened pool. Open it after gunicorn forks (``open()`` is idempotent)."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        name: str = "paygate",
        prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
        backend_nice: int = 0,
    ):
        self.url = url
        self.backend_nice = backend_nice
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            name=name,
            timeout=5.0,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "prepare_threshold": prepare_threshold,
            },
            check=self._check_connection,
            configure=self._configure if backend_nice > 0 else None,
            reconnect_timeout=0,
        )
        self._opened = False
        self._away = False
        self._next_probe = 0.0
        self._probing = threading.Lock()
        # ping(deadline): one bounded attempt at a time (paygate/probing.py); the attempt of
        # the probe thread, so the pool's check of an idle connection can be aborted too.
        self._bounded_ping = BoundedCheck("database", self._ping_attempt)
        self._ping_deadline = 2.0
        self._probe_thread = threading.local()

    def _configure(self, conn: psycopg.Connection) -> None:
        lower_backend_priority(conn, self.backend_nice)

    def _check_connection(self, conn: psycopg.Connection) -> None:
        attempt = getattr(self._probe_thread, "attempt", None)
        if attempt is not None:
            attempt.on_abort(lambda: shutdown_socket(conn))
        try:
            check_if_idle(conn)
        finally:
            if attempt is not None:
                attempt.on_abort(None)

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
        if self._away:
            self._probe()
        try:
            with translate_errors(), self.pool.connection() as conn:
                yield conn
                conn._paygate_returned_at = time.monotonic()
        except ServiceUnavailable:
            if not self._away:
                self._away = True
                log.warning("database unreachable: failing fast until a probe connects")
            raise

    def _probe(self) -> None:
        """Raise ServiceUnavailable unless a fresh connection proves the database is back.
        Callers queue behind a probe in flight and share its answer."""
        if not self._probing.acquire(timeout=CONNECT_TIMEOUT_SECONDS):
            raise ServiceUnavailable()
        try:
            if not self._away:
                return  # the probe we waited for got through
            now = time.monotonic()
            if now < self._next_probe:
                raise ServiceUnavailable()
            self._next_probe = now + PROBE_EVERY_SECONDS
            try:
                psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
            except psycopg.Error:
                raise ServiceUnavailable() from None
            # Every connection idle in the pool through the outage is dead. Left there, each
            # checkout would find one, fail its check and back off (1 s, 2 s, ...) until the
            # pool's timeout: replace them all now.
            self.pool.drain()
            self._away = False
            log.info("database reachable again")
        finally:
            self._probing.release()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        with self.connection() as conn, conn.transaction():
            yield conn

    def ping(self, deadline: float | None = None) -> bool:
        """Does the database answer ``SELECT 1``? With ``deadline`` (seconds), the answer comes
        within it whatever the server does: the query runs in a helper thread, one at a time,
        callers in between share its answer, and one still running at the deadline is aborted
        (its connection's socket shut down: a frozen server never answers, and no server-side
        timeout can help). Without, it waits like any query (the CLI, tests)."""
        if deadline is not None:
            self._ping_deadline = deadline
            return bool(self._bounded_ping(deadline))
        try:
            with self.connection() as conn:
                conn.execute("SELECT 1")
            return True
        except ServiceUnavailable:
            return False

    def _ping_attempt(self, attempt: Attempt) -> bool:
        self.open()
        self._probe_thread.attempt = attempt
        try:
            if self._away:
                self._probe()  # a fresh connection: bounded by connect_timeout
            with translate_errors():
                conn = self.pool.getconn(timeout=self._ping_deadline)
                try:
                    attempt.on_abort(lambda: shutdown_socket(conn))
                    conn.execute("SELECT 1")
                    conn._paygate_returned_at = time.monotonic()
                finally:
                    attempt.on_abort(None)
                    self.pool.putconn(conn)  # broken (aborted): the pool discards it
            return True
        except ServiceUnavailable:
            return False
        finally:
            self._probe_thread.attempt = None


def shutdown_socket(conn: psycopg.Connection) -> None:
    """Wake a query stuck on a server that never answers: shut the connection's socket down
    (on a duplicate of its descriptor, closed again here; the connection's own descriptor stays
    its own), so psycopg sees the connection lost and the pool discards it."""
    dup = socket.fromfd(conn.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM)
    try:
        dup.shutdown(socket.SHUT_RDWR)
    finally:
        dup.close()


@contextmanager
def translate_errors() -> Iterator[None]:
    """The database being unreachable is a 503 for the caller, never a 500 with a traceback."""
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InterfaceError) as exc:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        raise ServiceUnavailable() from exc


def connect(
    url: str, *, prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD
) -> psycopg.Connection:
    """A single autocommit connection outside any pool (CLI, migrations, tests)."""
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            prepare_threshold=prepare_threshold,
        )
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(DATABASE_UNREACHABLE.format(reason=first_line(exc))) from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
