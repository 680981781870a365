"""What every benchmark shares: the profile (full or quick), the gateway, a database
connection, the receiver's records, the queue, and the reset between benchmarks."""

from __future__ import annotations

import functools
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import requests

from .gateway import Gateway

ALPHABET = string.ascii_letters + string.digits
RESET_TABLES = (
    "processor_callbacks, payment_operations, webhook_attempts, webhook_logs, refunds, payments, "
    "idempotency_keys, webhook_circuits"
)


@dataclass(frozen=True)
class Profile:
    """How much each benchmark does: ``FULL`` for docs/performance.md, ``QUICK`` for a smoke run.
    Paygate's own settings come from ``paygate.config.Settings``, never from here."""

    name: str
    runs: int
    clients: int
    load_seconds: float
    e2e_payments: int
    e2e_rate: float
    drain_payments: int
    webhook_only: int
    pgbench_seconds: float
    noop_tasks: int
    orders: int
    burst_payments: int
    scaling_payments: int  # B4's drain with 1, 2 and 4 worker processes; 0: not run


# One row per profile, in the field order above.
#              name     runs clients load_s e2e  e2e_rate drain webhook pgbench noop  orders burst scaling
FULL = Profile("full",  3,   16,     20.0,  500, 10.0,    2000, 3000,   6.0,    3000, 5000,  500,  1000)  # fmt: skip
QUICK = Profile("quick", 1,  16,     3.0,   30,  10.0,    200,  300,    2.0,    500,  500,   100,  0)  # fmt: skip


@functools.cache
def _queue():
    """The gateway's queue as its processes build it (built late: PAYGATE_QUEUE is set by then)."""
    from paygate.config import Settings
    from paygate.jobs.queue import build_queue

    return build_queue(Settings.from_env())


def random_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(16))


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll until ``predicate`` is truthy; return its value, or the last value at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@dataclass
class Harness:
    profile: Profile
    gateway: Gateway
    db: psycopg.Connection
    merchant_id: str
    orders: list[str]
    worker_threads: int = 8

    def rows(self, query: str, params: Any = None) -> list[tuple]:
        return self.db.execute(query, params).fetchall()

    def one(self, query: str, params: Any = None) -> Any:
        return self.db.execute(query, params).fetchone()[0]

    # -- the receiver ---------------------------------------------------------------------

    def receiver(self, what: str) -> Any:
        return requests.get(f"{self.gateway.receiver_url}/_{what}", timeout=30).json()

    def received(self) -> int:
        return self.receiver("stats")["received"]

    # -- the queue ------------------------------------------------------------------------

    @staticmethod
    def queue():
        return _queue()

    @staticmethod
    def huey():
        return _queue().huey

    def queue_length(self) -> int:
        """Tasks waiting in both queues (payments' and webhook deliveries')."""
        queue = _queue()
        return queue.huey.pending_count() + queue.webhook_huey.pending_count()

    # -- between benchmarks -----------------------------------------------------------------

    def reset(self) -> None:
        """Worker paused, queue empty, no payments or deliveries, receiver forgotten."""
        self.gateway.pause_worker()
        self.huey().flush()
        self.queue().webhook_huey.flush()
        self._truncate()
        self.db.execute("UPDATE orders SET status = 'created'")
        requests.post(f"{self.gateway.receiver_url}/_reset", timeout=10)

    def _truncate(self, tries: int = 30) -> None:
        """TRUNCATE the reset tables. A worker paused (SIGSTOP) in the middle of a transaction
        holds its locks until it runs again: then let it run briefly and pause it again."""
        for _ in range(tries):
            try:
                with self.db.transaction():
                    self.db.execute("SET LOCAL lock_timeout = '1s'")
                    self.db.execute(f"TRUNCATE {RESET_TABLES}")
                return
            except psycopg.errors.LockNotAvailable:
                self.gateway.resume_worker()
                time.sleep(0.2)
                self.gateway.pause_worker()
        raise RuntimeError(f"could not truncate the bench's tables in {tries} tries")

    def create_orders(self, count: int, amount: int = 50000) -> list[str]:
        ids = [random_id("order_") for _ in range(count)]
        self.db.execute(
            """INSERT INTO orders (id, merchant_id, amount, currency, receipt)
               SELECT id, %s, %s, 'INR', 'bench' FROM unnest(%s::text[]) AS id""",
            (self.merchant_id, amount, ids),
        )
        return ids

    def postgres_pids(self) -> list[int]:
        """Server processes of this database (the gateway's pools keep theirs open)."""
        return [
            r[0]
            for r in self.rows(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
        ]

    def cpu(self) -> dict[str, float]:
        return self.gateway.cpu(self.postgres_pids())

    def quiesce(self, settle: float = 0.5, timeout: float = 15.0) -> None:
        """Wait for requests still in flight when the load stopped: rows and queue unchanged
        for ``settle`` seconds."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            now = (self.one("SELECT count(*) FROM payments"), self.queue_length())
            if now == last:
                return
            last = now
            time.sleep(settle)

    def payment_ids(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT id FROM payments")]

    def outbox_counts(self) -> dict[str, tuple[int, int]]:
        """event -> (rows, distinct resources) over the whole outbox."""
        rows = self.rows(
            "SELECT event, count(*), count(DISTINCT resource_id) FROM webhook_logs GROUP BY 1"
        )
        return {event: (n, distinct) for event, n, distinct in rows}

    def payment_states(self) -> dict[str, int]:
        return dict(self.rows("SELECT status, count(*) FROM payments GROUP BY 1"))

    def delivery_states(self) -> dict[str, int]:
        return dict(self.rows("SELECT status, count(*) FROM webhook_logs GROUP BY 1"))
