"""B6: the machine's raw ceilings, taken in the same run as B1-B5.

- pgbench: single-row INSERT (a payment-sized row, synchronous_commit as configured) with 1 and
  with 16 clients: what PostgreSQL alone commits per second here.
- Huey: no-op tasks per second through Paygate's own Huey instance, consumer flags and
  concurrency (bench/hueynoop.py), draining a backlog as B4/B5 do.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from paygate.config import Settings

from .harness import Harness, wait_until
from .servers import pgbench_binary

INSERT_SCRIPT = (
    "INSERT INTO bench_insert (order_id, amount, status, payload) "
    "VALUES ('order_bench', 50000, 'pending', repeat('x', 200));\n"
)


def pgbench_tps(h: Harness, database_url: str, clients: int) -> float | None:
    binary = pgbench_binary()
    if binary is None:
        return None
    h.db.execute(
        """CREATE TABLE IF NOT EXISTS bench_insert (
               id BIGSERIAL PRIMARY KEY, order_id TEXT NOT NULL, amount BIGINT NOT NULL,
               status TEXT NOT NULL, payload TEXT, created_at TIMESTAMPTZ DEFAULT now())"""
    )
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(INSERT_SCRIPT)
        script = fh.name
    try:
        out = subprocess.run(
            [
                binary,
                "-n",
                "-f",
                script,
                "-c",
                str(clients),
                "-j",
                str(min(clients, 2)),
                "-T",
                str(max(1, round(h.profile.pgbench_seconds))),
                database_url,
            ],
            capture_output=True,
            text=True,
            timeout=h.profile.pgbench_seconds + 60,
        )
    finally:
        Path(script).unlink(missing_ok=True)
    h.db.execute("TRUNCATE bench_insert")
    found = re.search(r"tps = ([0-9.]+)", out.stdout)
    return float(found.group(1)) if found else None


def huey_noop_rate(h: Harness, env: dict[str, str], log_dir: Path) -> float | None:
    """Tasks per second when a consumer with Paygate's flags drains a backlog of no-ops."""
    queue = env["PAYGATE_QUEUE"] + "_noop"
    child_env = {**env, "PAYGATE_QUEUE": queue}
    workers = Settings.from_env(env).worker_concurrency
    n = h.profile.noop_tasks
    redis = h.huey().storage.conn
    counter, ready = f"bench:{queue}:done", f"bench:{queue}:ready"
    redis.delete(counter, ready)
    log = open(log_dir / "hueynoop.log", "ab")
    consumer = subprocess.Popen(
        [sys.executable, "-m", "bench.hueynoop", "consume", str(workers)],
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if not wait_until(lambda: redis.get(ready), timeout=30, interval=0.05):
            return None
        time.sleep(0.3)
        os.killpg(consumer.pid, signal.SIGSTOP)
        subprocess.run(
            [sys.executable, "-m", "bench.hueynoop", "enqueue", str(n)],
            env=child_env,
            check=True,
            timeout=120,
        )
        started = time.monotonic()
        os.killpg(consumer.pid, signal.SIGCONT)
        done = wait_until(lambda: int(redis.get(counter) or 0) >= n, timeout=120, interval=0.01)
        elapsed = time.monotonic() - started
        return round(n / elapsed, 1) if done else None
    finally:
        os.killpg(consumer.pid, signal.SIGCONT)
        os.killpg(consumer.pid, signal.SIGINT)
        try:
            consumer.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(consumer.pid, signal.SIGKILL)
            consumer.wait(5)
        redis.delete(counter, ready, f"huey.redis.{queue}")


def b6_ceilings(h: Harness, database_url: str, env: dict[str, str], log_dir: Path) -> dict:
    h.gateway.pause_worker()  # the ceilings are the machine's, not shared with an idle worker
    metrics = {
        "pgbench_insert_tps_c1": pgbench_tps(h, database_url, 1),
        "pgbench_insert_tps_c16": pgbench_tps(h, database_url, 16),
        "huey_noop_tasks_per_s": huey_noop_rate(h, env, log_dir),
    }
    return {"metrics": metrics, "gates": {}}
