"""``python -m bench.scaling [--workers 1,2,4] [--payments N] [--runs R]``: B4's backlog drain
(payments settled and their webhooks delivered, per second) with 1, 2, 4 ``paygate worker``
processes, one API, on the bench's servers (bench/servers.py).

For each count the workers are started (each a separate process with its own janitor and pool),
paused with SIGSTOP while the backlog is created through the API, and resumed together: the
clock runs from SIGCONT to the last webhook. Also reported per count: the PostgreSQL backends of
this database after the drain (the gateway's pools), and the CPU seconds the workers, the API
and PostgreSQL spent from the resume to the end of the drain (after the last webhook, the
check that every delivery is recorded), which says where the ceiling is. Exit 1 when a gate
failed (a payment not final, a webhook missing, duplicated or badly signed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import report, servers
from .__main__ import gateway_env, say, start_signed
from .checks import summarize
from .drains import b4_backlog_drain
from .gateway import Gateway, cpu_seconds, tree_pids
from .harness import FULL, Harness, wait_until


class ScaledGateway(Gateway):
    """The bench's gateway with any number of worker processes (``worker``, ``worker-2``, ...),
    paused and resumed together."""

    on_resume = None  # called just before the workers resume (the drain's clock starts)
    # One process each, none with helpers of its own: the count is the bench's.
    worker_args = ("--processes", "1")

    def workers(self) -> list[str]:
        return [name for name in self.procs if name.startswith("worker")]

    def pause_worker(self) -> None:
        if not self.paused:
            for name in self.workers():
                os.killpg(self.procs[name].pid, signal.SIGSTOP)
            self.paused = True

    def resume_worker(self) -> None:
        if self.paused:
            if self.on_resume:
                self.on_resume()
            for name in self.workers():
                os.killpg(self.procs[name].pid, signal.SIGCONT)
            self.paused = False

    def add_workers(self, count: int) -> None:
        """Run ``count`` worker processes in all (never fewer than now)."""
        self.resume_worker()
        paygate = [sys.executable, "-m", "paygate"]
        for index in range(len(self.workers()) + 1, count + 1):
            self._spawn(f"worker-{index}", [*paygate, "worker", *self.worker_args])

    def cpu(self, postgres_pids: list[int]) -> dict[str, float]:
        used = {
            "api": cpu_seconds(tree_pids(self.procs["api"].pid)),
            "workers": sum(cpu_seconds(tree_pids(self.procs[n].pid)) for n in self.workers()),
        }
        used["postgres"] = cpu_seconds(postgres_pids)
        return used

    def rss_mb(self) -> dict[str, float]:
        return {}

    def stop(self) -> None:
        self.resume_worker()
        for name in self.workers():
            proc = self.procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        super().stop()


def beating(h: Harness) -> int:
    """Worker processes whose heartbeat is fresh."""
    queue = h.queue()
    conn = queue.huey.storage.conn
    return conn.zcount(queue.heartbeat_key, time.time() - queue.heartbeat_ttl, "+inf")


def measure(h: Harness, count: int) -> dict:
    """One drain with ``count`` workers running."""
    gateway: ScaledGateway = h.gateway  # type: ignore[assignment]
    gateway.add_workers(count)
    if not wait_until(lambda: beating(h) >= count, timeout=60, interval=0.2):
        raise RuntimeError(f"{count} workers did not all beat: {gateway.tail(f'worker-{count}')}")
    before: dict[str, float] = {}
    gateway.on_resume = lambda: before.update(h.cpu())  # the drain alone, not the creates
    try:
        result = b4_backlog_drain(h)
    finally:
        gateway.on_resume = None
    after = h.cpu()
    result["metrics"]["cpu_s"] = {part: round(after[part] - before[part], 2) for part in after}
    result["metrics"]["connections"] = h.one(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    result.pop("ops")
    return result


def table(result: dict) -> str:
    lines = [
        "| worker processes | payments/s | webhooks/s | seconds | CPU s in the drain: workers / "
        "API / PostgreSQL | PostgreSQL connections after it |",
        "|---|---|---|---|---|---|",
    ]
    for count, runs in result["counts"].items():
        med = {
            key: statistics.median(r["metrics"][key] for r in runs)
            for key in ("payments_per_s", "webhooks_per_s", "seconds")
        }
        cpu = {
            part: round(statistics.median(r["metrics"]["cpu_s"][part] for r in runs), 2)
            for part in runs[0]["metrics"]["cpu_s"]
        }
        connections = max(r["metrics"]["connections"] for r in runs)
        lines.append(
            f"| {count} | {med['payments_per_s']} | {med['webhooks_per_s']} | {med['seconds']} "
            f"| {cpu['workers']} / {cpu['api']} / {cpu['postgres']} | {connections} |"
        )
    return "\n".join(lines)


def drains(
    srv: servers.Servers,
    env: dict[str, str],
    log_dir: Path,
    counts: list[int],
    payments: int,
    runs: int,
) -> dict:
    """For each count of worker processes (ascending), ``runs`` drains of ``payments``: a fresh
    gateway (one API, the workers) on ``srv``'s database and queue, stopped at the end. The
    result: payments, knobs, and per count its drains (metrics and gates)."""
    profile = dataclasses.replace(FULL, name="scaling", drain_payments=payments)
    log_dir.mkdir(parents=True, exist_ok=True)
    gateway = ScaledGateway(env=env, log_dir=log_dir)
    db = None
    result: dict = {"payments": payments, "counts": {}}
    try:
        from paygate.config import TEST_MERCHANT_ID, Settings

        settings = Settings.from_env(env)
        result["knobs"] = {
            "worker_concurrency": settings.worker_concurrency,
            "db_pool_max": settings.db_pool_max,
            "api_workers": settings.api_workers,
        }
        db = start_signed(srv, env, gateway)
        h = Harness(profile, gateway, db, TEST_MERCHANT_ID, [], settings.worker_concurrency)
        h.orders = h.create_orders(min(payments, profile.orders))
        for count in counts:
            done = []
            for run in range(runs):
                done.append(measure(h, count))
                gates = "ok" if summarize(done[-1]["gates"]) else "GATE FAILED"
                say(f"{count} worker(s), run {run + 1}: {done[-1]['metrics']} ({gates})")
            result["counts"][count] = done
    finally:
        if db is not None:
            db.close()
        gateway.stop()
    result["gates_ok"] = not failed_gates(result)
    return result


def failed_gates(result: dict) -> list[str]:
    """``<count> worker(s), run <n> <gate>: <detail>`` for every gate that did not hold."""
    return [
        f"{count} worker(s), run {i + 1} {name}: {g['detail']}"
        for count, done in result["counts"].items()
        for i, run in enumerate(done)
        for name, g in run["gates"].items()
        if not g["ok"]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, ascending")
    parser.add_argument("--payments", type=int, default=1000, help="backlog size per drain")
    parser.add_argument("--runs", type=int, default=1, help="drains per count (median)")
    parser.add_argument("--results-dir", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.workers.split(",")]
    if counts != sorted(counts) or counts[0] < 1:
        parser.error("--workers: ascending counts of 1 or more, e.g. 1,2,4")
    results_dir = Path(args.results_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = results_dir / f"logs-{stamp}-scaling"
    log_dir.mkdir(parents=True, exist_ok=True)

    srv = servers.start()
    env = gateway_env(srv)
    for key in ("DATABASE_URL", "REDIS_URL", "PAYGATE_QUEUE"):
        os.environ[key] = env[key]  # before anything imports paygate.jobs
    result: dict = {"machine": report.machine(), "payments": args.payments, "counts": {}}
    try:
        result["servers"] = srv.describe()
        say(f"bench.scaling: {counts} workers, {args.payments} payments; {result['servers']}")
        result.update(drains(srv, env, log_dir, counts, args.payments, args.runs))
    finally:
        servers.stop(srv)

    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = table(result)
    (results_dir / f"{stamp}-scaling.json").write_text(json.dumps(result, indent=2))
    (results_dir / f"{stamp}-scaling.md").write_text(text + "\n")
    print(text)
    return 0 if result["gates_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
