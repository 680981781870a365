"""``python -m bench [--quick] [--runs N]``: run the suite, print the table, write JSON.

Exit status 0 when every gate held (0 non-2xx, 0 bad signatures, every payment final, one
webhook per payment event), 1 otherwise. Slowness never fails a run: targets are reported.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import secrets
import sys
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from . import report, servers
from .ceilings import b6_ceilings
from .checks import summarize
from .drains import b4_backlog_drain, b5_webhook_delivery
from .gateway import Gateway, RssSampler
from .harness import FULL, QUICK, Harness
from .profiling import PROFILED, profile_summary, recording
from .scenarios import b1_create, b2_create_with_worker, b3_end_to_end, b7_burst

BENCHMARKS = [
    ("B1", "create, worker stopped", b1_create),
    ("B2", "create, worker running", b2_create_with_worker),
    ("B3", "end to end, paced", b3_end_to_end),
    ("B4", "backlog drain", b4_backlog_drain),
    ("B5", "webhook-only delivery", b5_webhook_delivery),
    ("B7", "burst, worker running", b7_burst),
]
SCALING_WORKERS = [1, 2, 4]  # worker processes for B4's drain in the full profile
KNOBS = ("api_workers", "api_threads", "db_pool_min", "db_pool_max", "worker_concurrency")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def gateway_env(srv: servers.Servers) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": srv.database_url,
        "REDIS_URL": srv.redis_url,
        "PAYGATE_QUEUE": srv.queue,
        "TEST_MODE": "true",
        "TEST_PROCESSING_DELAY": "0",
        "PAYGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
        "PYTHONUNBUFFERED": "1",
    }


def prepare(srv: servers.Servers, env: dict[str, str]) -> None:
    from paygate.config import Settings
    from paygate.db import connect
    from paygate.db.merchants import seed_test_merchant
    from paygate.db.migrate import migrate

    with connect(srv.database_url) as conn:
        migrate(conn)
        seed_test_merchant(conn, Settings.from_env(env))


def start_signed(srv: servers.Servers, env: dict[str, str], gateway: Gateway):
    """Migrate and seed, start ``gateway`` with a Standard Webhooks secret, and point the test
    merchant's webhooks at its receiver; the (autocommit) database connection."""
    from paygate.config import TEST_MERCHANT_ID

    prepare(srv, env)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    gateway.start(secret)
    db = psycopg.connect(srv.database_url, autocommit=True)
    db.execute(
        "UPDATE merchants SET webhook_url = %s, webhook_secret = %s WHERE id = %s",
        (gateway.receiver_url + "/webhooks", secret, TEST_MERCHANT_ID),
    )
    return db


def one_run(
    h: Harness,
    index: int,
    srv: servers.Servers,
    env: dict,
    log_dir: Path,
    profile_dir: Path | None = None,
) -> dict:
    run: dict = {}
    peaks = []
    for name, title, fn in BENCHMARKS:
        started = time.monotonic()
        before = h.cpu()
        target = PROFILED.get(name) if profile_dir else None
        pid = h.gateway.procs[target].pid if target else 0
        raw = profile_dir / f"{name}-{target}.txt" if target else None
        with RssSampler(h.gateway) as sampler, recording(pid, raw) if target else nullcontext():
            run[name] = fn(h)
        after = h.cpu()
        if raw is not None and raw.exists():
            (profile_dir / f"{name}-{target}-summary.txt").write_text(profile_summary(raw) + "\n")
        ops = max(1, run[name].pop("ops"))
        run[name]["cpu_ms_per_op"] = {
            part: round((after[part] - before.get(part, 0.0)) * 1000 / ops, 3) for part in after
        }
        peaks.append(sampler.peak)
        gates = "ok" if summarize(run[name]["gates"]) else "GATE FAILED"
        say(
            f"[run {index}] {name} {title}: {run[name]['metrics']} cpu ms/op "
            f"{run[name]['cpu_ms_per_op']} ({time.monotonic() - started:.0f} s, {gates})"
        )
    end = h.gateway.rss_mb()
    run["rss"] = {
        "metrics": {
            "peak_total_mb": round(max(p["total"] for p in peaks), 1),
            "peak_api_mb": round(max(p["api"] for p in peaks), 1),
            "peak_worker_mb": round(max(p["worker"] for p in peaks), 1),
            "end_total_mb": round(sum(end.values()), 1),
        },
        "gates": {},
    }
    run["B6"] = b6_ceilings(h, srv.database_url, env, log_dir)
    say(f"[run {index}] B6 ceilings: {run['B6']['metrics']}; RSS: {run['rss']['metrics']}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, 1 run (CI)")
    parser.add_argument("--runs", type=int, help="runs to take the median of")
    parser.add_argument("--results-dir", default=str(Path(__file__).parent / "results"))
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the API in B1 and the worker in B4 (run 1)"
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.runs:
        profile = dataclasses.replace(profile, runs=args.runs)
    results_dir = Path(args.results_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = results_dir / f"logs-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    info = {"profile": dataclasses.asdict(profile), "machine": report.machine()}

    srv = servers.start()
    env = gateway_env(srv)
    for key in ("DATABASE_URL", "REDIS_URL", "PAYGATE_QUEUE"):
        os.environ[key] = env[key]  # before anything imports paygate.jobs
    gateway = Gateway(env=env, log_dir=log_dir)
    db = None
    try:
        from paygate.config import TEST_MERCHANT_ID, Settings
        from paygate.supervisor import process_count

        settings = Settings.from_env(env)
        info["knobs"] = {k: getattr(settings, k) for k in KNOBS}
        processes = info["knobs"]["worker_processes"] = process_count(settings)  # auto, resolved
        info["servers"] = srv.describe()
        say(f"bench: {profile.name}, {profile.runs} run(s); {info['servers']}; {info['knobs']}")
        db = start_signed(srv, env, gateway)
        # Every consumer thread, task or webhook, of every worker process blocks in BRPOP on its
        # queue: a stopped worker holds one job per thread.
        threads = (settings.worker_concurrency + settings.webhook_concurrency) * processes
        h = Harness(profile, gateway, db, TEST_MERCHANT_ID, [], threads)
        h.orders = h.create_orders(profile.orders)
        runs = [
            one_run(h, i + 1, srv, env, log_dir, log_dir if args.profile and i == 0 else None)
            for i in range(profile.runs)
        ]
        if profile.scaling_payments:
            from . import scaling  # it imports this module: not at the top

            db.close()
            db = None
            gateway.stop()  # its stopped worker would take jobs from the shared queue
            say(f"bench: B4 drain with {SCALING_WORKERS} worker processes")
            info["scaling"] = scaling.drains(
                srv, env, log_dir / "scaling", SCALING_WORKERS, profile.scaling_payments, runs=1
            )
    finally:
        if db is not None:
            db.close()
        gateway.stop()
        servers.stop(srv)

    med = report.medians(runs)
    result = {
        **info,
        "started_at": stamp,
        "seconds": round(time.monotonic() - started, 1),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
        "medians": med,
        "targets": report.targets(med),
        "cpu_targets": report.cpu_targets(runs),
        "leak_check": report.leak_check([r["rss"]["metrics"]["end_total_mb"] for r in runs]),
    }
    result["gates_ok"] = all(summarize(res["gates"]) for run in runs for res in run.values())
    if "scaling" in result:
        result["gates_ok"] = result["gates_ok"] and result["scaling"]["gates_ok"]
    text = report.table(result)
    if "scaling" in result:
        from . import scaling

        failed = scaling.failed_gates(result["scaling"])
        text += (
            f"\n\nB4 drain with 1, 2 and 4 worker processes ({result['scaling']['payments']} "
            "payments, one drain each):\n\n"
            + scaling.table(result["scaling"])
            + "\nGates: "
            + ("all passed" if not failed else "FAILED")
            + "".join(f"\n  - {f}" for f in failed)
        )
    path = results_dir / f"{stamp}-{profile.name}.json"
    path.write_text(json.dumps(result, indent=2))
    (results_dir / f"latest-{profile.name}.json").write_text(json.dumps(result, indent=2))
    (results_dir / f"{stamp}-{profile.name}.md").write_text(text + "\n")
    print(text)
    say(f"bench: {result['seconds']:.0f} s; results in {path}; logs in {log_dir}")
    return 0 if result["gates_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
