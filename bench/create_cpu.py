"""``python -m bench.create_cpu [N]``: CPU per payment created, in process, without gunicorn.

Starts a private embedded PostgreSQL (so no other client's work is counted), migrates and seeds
it, builds the API app through the composition root, and creates ``N`` UPI payments through
``falcon.testing``. Prints the CPU of this process (the API's share: routing, validation, views,
serialization, psycopg) and of the PostgreSQL server's processes, per payment, in ms. Redis is
``REDIS_URL`` (default the machine's 127.0.0.1:6379) under a queue of its own. Its figures are
steadier than B1's on a busy machine: no HTTP client, server model or scheduler in the way; use
it for before/after comparisons of the create path (docs/performance.md).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

AUTH = {"X-Api-Key": "key_test_abc123", "X-Api-Secret": "secret_test_xyz789"}
WARM_UP = 50


def _server_cpu(data_dir: Path) -> float:
    """CPU seconds of the PostgreSQL server whose data lives under ``data_dir``: the
    postmaster and every backend it started."""
    for proc in psutil.process_iter(["cmdline"]):
        if str(data_dir) in " ".join(proc.info["cmdline"] or []):
            try:
                family = [proc, *proc.children(recursive=True)]
                return sum(p.cpu_times().user + p.cpu_times().system for p in family)
            except psutil.Error:
                continue
    raise RuntimeError("the embedded PostgreSQL server was not found")


def main(count: int) -> dict[str, float]:
    from paygate.embedded import free_port, postgres_in

    state = Path(tempfile.mkdtemp(prefix="paygate-create-cpu-"))
    server = postgres_in(state, free_port()).start()
    os.environ.update(
        {
            "DATABASE_URL": server.url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "PAYGATE_QUEUE": f"bench-create-cpu-{os.getpid()}",
            "TEST_MODE": "true",
            "TEST_PROCESSING_DELAY": "0",
        }
    )
    logging.disable(logging.INFO)
    import falcon.testing

    from paygate.api.app import create_app
    from paygate.config import Settings
    from paygate.jobs.queue import build_queue
    from paygate.wiring import build_context, prepare_database

    try:
        settings = Settings.from_env()
        prepare_database(settings)
        queue = build_queue(settings)
        ctx = build_context(settings, queue=queue)
        client = falcon.testing.TestClient(create_app(ctx))
        orders = [
            client.simulate_post(
                "/api/v1/orders", json={"amount": 50000, "currency": "INR"}, headers=AUTH
            ).json["id"]
            for _ in range(count + WARM_UP)
        ]

        def create(order_id: str) -> None:
            body = {"order_id": order_id, "method": "upi", "vpa": "user@paytm"}
            answer = client.simulate_post("/api/v1/payments", json=body, headers=AUTH)
            assert answer.status_code == 201, answer.text

        for order_id in orders[:WARM_UP]:
            create(order_id)
        pg_before, api_before = _server_cpu(state), time.process_time()
        for order_id in orders[WARM_UP:]:
            create(order_id)
        api_after, pg_after = time.process_time(), _server_cpu(state)
        ctx.db.close()
        queue.flush()  # the jobs this wrote: no worker consumes this queue
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)  # its data directory: nothing is left behind
    return {
        "payments": count,
        "api_ms": round((api_after - api_before) / count * 1000, 3),
        "postgres_ms": round((pg_after - pg_before) / count * 1000, 3),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 800)))
