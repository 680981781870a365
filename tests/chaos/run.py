"""One chaos run: a gateway on a fresh database, its receiver and ledger, and what the record says.

Settlement and delivery are read from the database itself (the record), never from the API,
so a run can be judged even while the API is down.
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from paygate.db import connect
from tests.chaos.load import Receiver, ledger_calls, ledger_charges
from tests.chaos.servers import ChaosServers, child_env
from tests.fixtures import Gateway

FINAL_EVENTS = ("payment.success", "payment.failed", "refund.processed", "refund.failed")
WEBHOOK_BODIES = "webhooks.bodies"  # every body a run's receiver got, kept for the scan


@dataclass
class ChaosRun:
    servers: ChaosServers
    name: str
    database: str
    database_url: str
    gateway: Gateway
    receiver: Receiver
    ledger: Path

    @classmethod
    def create(cls, servers: ChaosServers, name: str, **env: str) -> ChaosRun:
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40]
        directory = servers.root / slug
        directory.mkdir(parents=True, exist_ok=True)
        receiver = Receiver()
        database = f"chaos_{slug}"
        url = servers.create_database(database, receiver.url())
        ledger = directory / "processor.ledger"
        gateway = Gateway(
            env=child_env(servers, url, PAYGATE_TESTMODE_LEDGER=str(ledger), **env),
            tmp=str(directory),
        )
        return cls(servers, name, database, url, gateway, receiver, ledger)

    def start(self, consumers: int = 2, concurrency: int = 8, api_workers: int = 2) -> None:
        self.gateway.start_api(workers=api_workers, threads=8)
        for n in range(consumers):
            self.gateway.start_worker(f"worker-{n}", concurrency=concurrency)
        self.gateway.wait_healthy(worker=True)

    def restart_worker(self, name: str, concurrency: int = 8) -> None:
        """SIGKILL a consumer (no goodbye, no cleanup) and start a new one in its place."""
        self.gateway.send_signal(name, signal.SIGKILL)
        self.gateway.procs[name].wait(10)
        self.gateway.start_worker(name, concurrency=concurrency)

    def close(self) -> None:
        self.gateway.stop_all()
        self.receiver.close(keep_bodies_in=self.directory / WEBHOOK_BODIES)

    @property
    def directory(self) -> Path:
        return Path(self.gateway.tmp)

    # -- the record ------------------------------------------------------------------------

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        with connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()

    def pending(self, ids: list[str]) -> int:
        rows = self.query(
            "SELECT count(*) AS n FROM payments WHERE id = ANY(%s) AND status = 'pending'", (ids,)
        )
        return rows[0]["n"]

    def pending_all(self) -> int:
        return self.query("SELECT count(*) AS n FROM payments WHERE status = 'pending'")[0]["n"]

    def statuses(self, ids: list[str]) -> Counter:
        rows = self.query(
            "SELECT status, count(*) AS n FROM payments WHERE id = ANY(%s) GROUP BY status", (ids,)
        )
        return Counter({row["status"]: row["n"] for row in rows})

    def rescued(self, ids: list[str]) -> int:
        """Payments claimed more than once: a worker died holding them, or lost their task."""
        rows = self.query(
            "SELECT count(*) AS n FROM payments WHERE id = ANY(%s) AND processor_attempts > 1",
            (ids,),
        )
        return rows[0]["n"]

    def slowest_settle(self, ids: list[str]) -> float:
        """Seconds from the 201 to settlement of the slowest payment."""
        rows = self.query(
            """SELECT coalesce(max(extract(epoch FROM settled_at - created_at)), 0) AS s
                 FROM payments WHERE id = ANY(%s)""",
            (ids,),
        )
        return round(float(rows[0]["s"]), 1)

    def undelivered(self, ids: list[str], refund_ids: list[str] = ()) -> list[tuple[str, str]]:
        """Payments and refunds not final yet, or whose final event the receiver has not seen."""
        missing = []
        for table, wanted, kind in (
            ("payments", ids, "payment"),
            ("refunds", refund_ids, "refund"),
        ):
            if not wanted:
                continue
            rows = self.query(
                f"SELECT id, status FROM {table} WHERE id = ANY(%s) AND status <> 'pending'",
                (list(wanted),),
            )
            seen = self.receiver.deliveries(*FINAL_EVENTS)
            missing += [
                (f"{kind}.{row['status']}", row["id"])
                for row in rows
                if seen[(f"{kind}.{row['status']}", row["id"])] == 0
            ]
            final = {row["id"] for row in rows}
            missing += [(f"{kind} pending", i) for i in wanted if i not in final]
        return missing

    def wait_drained(self, ids: list[str], timeout: float, refund_ids: list[str] = ()) -> float:
        """Seconds until every payment (and refund) is final and its final webhook arrived;
        fails on timeout with what is still missing."""
        started = time.monotonic()
        deadline = started + timeout
        missing: list = []
        while time.monotonic() < deadline:
            missing = self.undelivered(ids, refund_ids)
            if not missing:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(
            f"{len(missing)} not drained after {timeout:.0f} s (first: {missing[:5]}); "
            f"statuses {dict(self.statuses(ids))}; logs:\n{self.gateway.tail(15)}"
        )

    def try_drain(
        self, ids: list[str], timeout: float, refund_ids: list[str] = ()
    ) -> tuple[float | None, str | None]:
        """(drain seconds, None), or (None, what is missing): the figures get recorded either
        way, then the test fails on the problem."""
        try:
            return round(self.wait_drained(ids, timeout, refund_ids), 1), None
        except AssertionError as exc:
            return None, str(exc)

    def duplicates(self, ids: list[str]) -> int:
        """Deliveries of a payment's or refund's final event beyond the first."""
        wanted = set(ids)
        seen = self.receiver.deliveries(*FINAL_EVENTS)
        return sum(n - 1 for (_, pid), n in seen.items() if pid in wanted and n > 1)

    def charges(self) -> Counter:
        """Money movements per payment id."""
        return ledger_charges(self.ledger)

    def refunds_moved(self) -> Counter:
        """Money movements per refund id."""
        return ledger_charges(self.ledger, "refund")

    def processor_calls(self) -> Counter:
        return ledger_calls(self.ledger)
