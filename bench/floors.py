"""``python -m bench.floors``: what the fixed choices cost per create before Paygate does anything.

Issue 20 asks for at most 1.0 ms of API + PostgreSQL CPU per payment created (B1). This measures
the parts of that millisecond the project's fixed choices spend on their own, on this machine:

- ``server``: gunicorn (``gthread``, the API's own sizing: 2 workers x 8 threads, through
  ``paygate.serve``, as ``paygate api`` runs it) serving a Falcon app whose one resource reads
  the body and answers a fixed 201 JSON, loaded by wrk exactly as B1 loads the API (16
  keep-alive connections, the same requests and headers). CPU of the server's processes per
  request. Needs wrk (skipped without it).
- ``statement``: psycopg's client CPU for one statement of the create's kind (a prepared
  SELECT of an order by primary key and merchant, one row into a dict, as ``db.orders.get``),
  against the same through libpq alone (``pgconn.exec_prepared``, no row made): the Python
  layer's share. Run on ``DATABASE_URL`` (default the machine's PostgreSQL), on a temporary
  table.
- ``harness``: the in-process client ``bench.create_cpu`` uses (``falcon.testing``) against the
  empty app: subtracted from its API figure, what is left is the create's own.
- ``create``: ``bench.create_cpu``'s figures, the whole create in process without an HTTP
  server (Paygate's Python, psycopg, Redis client) and the PostgreSQL server's CPU for its two
  statements and commit (the payment, its two events and their webhook logs).

Prints one JSON object (ms per operation). docs/performance.md ("The floors") has the figures
and what they mean for the target.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import falcon

from .gateway import cpu_seconds, tree_pids
from .load import AUTH, VPA, run_wrk, wrk_available
from .servers import MACHINE_DATABASE_URL

WARM_UP = 200  # calls before the clock starts (statements prepared, caches warm)

ANSWER = (
    b'{"id":"pay_0000000000000000","entity":"payment","status":"pending","amount":50000,'
    b'"currency":"INR","method":"upi","vpa":"bench@okaxis","created_at":"2026-01-01T00:00:00Z"}'
)


class _Answer:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        resp.status = falcon.HTTP_201
        resp.content_type = falcon.MEDIA_JSON
        resp.data = ANSWER


def empty_app() -> falcon.App:
    """The factory gunicorn loads in each worker: one resource, no middleware."""
    app = falcon.App()
    app.add_route("/api/v1/payments", _Answer())
    return app


def _serve(port: int) -> None:
    from paygate.serve import serve

    serve(
        "bench.floors:empty_app", host="127.0.0.1", port=port, workers=2, threads=8, name="floors"
    )


def server_floor(seconds: float) -> dict[str, float] | None:
    """CPU ms per request of gunicorn + Falcon with nothing behind them; None without wrk."""
    if not wrk_available():
        return None
    from paygate.embedded import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from bench.floors import _serve; _serve({port})"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/payments"
        orders = [f"order_floor{i:06d}" for i in range(1000)]
        deadline = time.monotonic() + 30
        while True:  # up, and its workers warmed
            try:
                run_wrk(url, orders, 16, 1)
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the empty app's server did not start") from None
                time.sleep(0.3)
        pids = tree_pids(proc.pid)
        before = cpu_seconds(pids)
        result = run_wrk(url, orders, 16, seconds)
        spent = cpu_seconds(pids) - before
        if result.not_created or result.errors:
            raise RuntimeError(f"the empty app answered {result.not_created} non-201s")
        return {
            "server_ms": round(spent / result.requests * 1000, 3),
            "requests_per_s": round(result.throughput, 1),
        }
    finally:
        proc.terminate()
        proc.wait(30)


def _cpu_per_call(call, count: int) -> float:
    """This process's CPU seconds per call of ``call``, after ``WARM_UP`` untimed calls."""
    for _ in range(WARM_UP):
        call()
    start = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - start) / count


def statement_floor(count: int) -> dict[str, float]:
    """Client CPU us per statement: psycopg (dict row) against libpq alone."""
    import psycopg
    from psycopg.rows import dict_row

    url = os.environ.get("DATABASE_URL", MACHINE_DATABASE_URL)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "CREATE TEMP TABLE floor_orders (id text PRIMARY KEY, merchant_id text, amount bigint,"
            " currency text, receipt text, notes jsonb, status text,"
            " created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO floor_orders (id, merchant_id, amount, currency, status, notes)"
            " VALUES ('order_1', 'merch_1', 50000, 'INR', 'created', '{}')"
        )
        query = (
            "SELECT id, merchant_id, amount, currency, receipt, notes, status, created_at,"
            " updated_at FROM floor_orders WHERE id = %s AND merchant_id = %s"
        )
        conn.execute(f"PREPARE floor_q AS {query.replace('%s', '$1', 1).replace('%s', '$2', 1)}")
        pgconn = conn.pgconn

        def psycopg_layer() -> None:
            conn.execute(query, ("order_1", "merch_1")).fetchone()

        def libpq_alone() -> None:
            pgconn.exec_prepared(b"floor_q", [b"order_1", b"merch_1"])

        return {
            "psycopg_us": round(_cpu_per_call(psycopg_layer, count) * 1e6, 1),
            "libpq_us": round(_cpu_per_call(libpq_alone, count) * 1e6, 1),
        }


def harness_floor(count: int) -> float:
    """CPU ms per request of ``falcon.testing``'s client with the empty app behind it."""
    import falcon.testing

    client = falcon.testing.TestClient(empty_app())
    body = {"order_id": "order_floor", "method": "upi", "vpa": VPA}

    def post() -> None:
        client.simulate_post("/api/v1/payments", json=body, headers=AUTH)

    return round(_cpu_per_call(post, count) * 1000, 3)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.floors", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="the server's wrk run")
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--creates", type=int, default=2000, help="bench.create_cpu's count")
    args = parser.parse_args(argv)
    from . import create_cpu

    server = server_floor(args.seconds)
    statement = statement_floor(args.statements)
    harness = harness_floor(args.creates)
    create = create_cpu.main(args.creates)  # last: it points DATABASE_URL at its own server
    figures = {
        "server": server,
        "statement": statement,
        "harness_ms": harness,
        "create": {**create, "own_ms": round(create["api_ms"] - harness, 3)},
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
