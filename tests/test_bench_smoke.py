"""The benchmark harness: its gates fail when they should, and ``python -m bench --quick``
runs green against real servers (a smoke test of the suite with its gates; never timed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench import checks, report
from bench.load import percentile
from bench.receiver import Recorder, signature_ok

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


def signed(body: bytes, secret: str = SECRET, msg_id: bytes = b"id1", ts: bytes = b"1700000000"):
    key = base64.b64decode(secret[len("whsec_") :])
    std = base64.b64encode(hmac.new(key, msg_id + b"." + ts + b"." + body, "sha256").digest())
    return {
        b"x-webhook-signature": hmac.new(secret.encode(), body, hashlib.sha256)
        .hexdigest()
        .encode(),
        b"webhook-id": msg_id,
        b"webhook-timestamp": ts,
        b"webhook-signature": b"v1," + std,
    }


def test_receiver_accepts_both_correct_signatures():
    body = b'{"event":"payment.success","data":{"payment":{"id":"pay_1"}}}'
    assert signature_ok(SECRET, signed(body), body)


def test_receiver_rejects_a_tampered_body_or_a_wrong_standard_signature():
    body = b'{"event":"payment.success"}'
    headers = signed(body)
    assert not signature_ok(SECRET, headers, body + b" ")
    headers[b"webhook-signature"] = b"v1," + base64.b64encode(b"x" * 32)
    assert not signature_ok(SECRET, headers, body)


def test_receiver_counts_bad_signatures_and_records_the_payment():
    recorder = Recorder(SECRET)
    good = b'{"event":"payment.success","data":{"payment":{"id":"pay_1"}}}'
    recorder.record(signed(good), good)
    recorder.record(signed(good), good.replace(b"pay_1", b"pay_2"))
    assert recorder.stats()["bad_signatures"] == 1
    assert [a[1] for a in recorder.arrivals] == ["pay_1", "pay_2"]


def test_one_webhook_per_event_fails_on_missing_duplicated_or_unexpected():
    events = ("payment.created", "payment.success")
    ok = [("payment.created", "p1", "a", 0, True), ("payment.success", "p1", "b", 0, True)]
    assert checks.one_webhook_per_event(ok, ["p1"], events)["ok"]
    assert not checks.one_webhook_per_event(ok[:1], ["p1"], events)["ok"]
    assert not checks.one_webhook_per_event(ok + ok[1:], ["p1"], events)["ok"]
    extra = ok + [("payment.failed", "p1", "c", 0, True)]
    assert not checks.one_webhook_per_event(extra, ["p1"], events)["ok"]


def test_outbox_gate_wants_one_creation_pair_per_payment_and_one_terminal_per_settled():
    counts = {
        "payment.created": (3, 3),
        "payment.pending": (3, 3),
        "payment.success": (2, 2),
    }
    assert checks.outbox_once_per_payment(counts, 3, 2)["ok"]
    assert not checks.outbox_once_per_payment(counts, 3, 1)["ok"]
    doubled = {**counts, "payment.pending": (4, 3)}
    assert not checks.outbox_once_per_payment(doubled, 3, 2)["ok"]


def test_load_and_finality_gates():
    assert checks.all_created(0, 0)["ok"]
    assert not checks.all_created(1, 0)["ok"]
    assert not checks.all_created(0, 1)["ok"]
    assert checks.all_final({"success": 4, "failed": 1}, 5)["ok"]
    assert not checks.all_final({"success": 4, "pending": 1}, 5)["ok"]
    assert checks.rows_match_answers(10, 10, 16)["ok"]
    assert not checks.rows_match_answers(9, 10, 16)["ok"]
    assert checks.jobs_enqueued(295, 300, 8)["ok"]
    assert not checks.jobs_enqueued(290, 300, 8)["ok"]


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([], 99) == 0.0


def test_leak_check_flags_growth_across_runs():
    assert report.leak_check([200.0, 205.0, 204.0])["ok"]
    assert not report.leak_check([200.0, 240.0, 290.0])["ok"]
    assert report.leak_check([200.0])["ok"] is None


def test_targets_are_issue_20s_and_each_holds_or_fails_at_its_bound():
    med = {
        "B1.throughput_rps": 1500.0,
        "B1.p99_ms": 23.1,
        "B2.throughput_rps": 899.0,
        "B2.p99_ms": 42.0,
        "B3.p50_ms": 10.0,
        "B3.p99_ms": 19.5,
        "B4.payments_per_s": 520.0,
        "B5.webhooks_per_s": 799.0,
        "B7.seconds": 2.2,
        "rss.peak_total_mb": 401.0,
        "B6.pgbench_insert_tps_c16": 20000.0,
    }
    verdicts = {r["key"]: r["holds"] for r in report.targets(med)}
    assert verdicts == {
        "B1.throughput_rps": True,
        "B1.p50_ms": None,
        "B1.p99_ms": False,
        "B2.throughput_rps": False,
        "B2.p99_ms": True,
        "B3.p50_ms": True,
        "B3.p99_ms": False,
        "B4.payments_per_s": True,
        "B5.webhooks_per_s": False,
        "B7.seconds": True,
        "B6.pgbench_insert_tps_c1": None,
        "B6.pgbench_insert_tps_c16": None,
        "B6.huey_noop_tasks_per_s": None,
        "rss.peak_total_mb": False,
    }
    (burst,) = (r for r in report.targets({"B7.seconds": 2.21}) if r["key"] == "B7.seconds")
    assert burst["holds"] is False and burst["target"] == "<= 2.2"
    # the ratio to pgbench is reported, no longer a target of its own
    row = next(r for r in report.targets(med) if r["key"] == "B1.throughput_rps")
    assert row["ratio_to_b6"] == 0.075


def test_cpu_targets_sum_the_named_parts_per_run_and_take_the_median():
    def run(b1_api, b1_pg, b4_worker, b4_pg):
        return {
            "B1": {"cpu_ms_per_op": {"api": b1_api, "worker": 0.5, "postgres": b1_pg}},
            "B4": {"cpu_ms_per_op": {"api": 2.0, "worker": b4_worker, "postgres": b4_pg}},
        }

    runs = [run(0.6, 0.4, 2.0, 1.5), run(0.7, 0.4, 2.5, 1.5), run(0.5, 0.3, 2.0, 1.0)]
    rows = {r["bench"]: r for r in report.cpu_targets(runs)}
    assert rows["B1"]["value"] == 1.0 and rows["B1"]["holds"]  # the worker's 0.5 not counted
    assert rows["B4"]["value"] == 3.5 and rows["B4"]["holds"]  # the API's 2.0 not counted
    runs[2] = run(0.7, 0.4, 2.5, 1.5)
    rows = {r["bench"]: r for r in report.cpu_targets(runs)}
    assert not rows["B1"]["holds"] and not rows["B4"]["holds"]
    assert report.cpu_targets([])[0]["holds"] is None
    lines = report.cpu_table(runs)
    assert any(ln.startswith("| B1 per payment created |") and "**no**" in ln for ln in lines)


def _burst(**changes):
    """B7's gates over a clean burst of two payments, with ``changes`` applied."""
    events = ("payment.created", "payment.pending", "payment.success")
    arrivals = [(e, p, f"{e}-{p}", 1.0, True) for p in ("p1", "p2") for e in events]
    seen = {
        "sent": 2,
        "created": ["p1", "p2"],
        "not_created": 0,
        "errors": 0,
        "states": {"success": 2},
        "arrivals": arrivals,
        "bad_signatures": 0,
        "delivery_states": {"success": 6},
        "events": events,
    }
    seen.update(changes)
    return {name: g["ok"] for name, g in checks.burst_gates(**seen).items()}


def test_burst_gates_hold_on_a_clean_burst_and_fail_when_they_should():
    assert all(_burst().values())
    assert not _burst(not_created=1)["all_201"]
    assert not _burst(errors=1)["all_201"]
    assert not _burst(sent=3)["all_201"]  # a create that got no answer counted nowhere else
    assert not _burst(states={"success": 1, "pending": 1})["final"]
    assert not _burst(bad_signatures=1)["signatures"]
    assert not _burst(delivery_states={"success": 5, "pending": 1})["delivered"]
    events = ("payment.created", "payment.pending", "payment.success")
    full = [(e, p, "w", 1.0, True) for p in ("p1", "p2") for e in events]
    assert not _burst(arrivals=full[:-1])["one_webhook_each"]  # p2's success missing
    assert not _burst(arrivals=full + full[:1])["one_webhook_each"]  # p1's created twice
    assert not _burst(arrivals=full + [("payment.failed", "p1", "w", 1.0, True)])[
        "one_webhook_each"
    ]


def test_burst_clock_stops_at_the_last_first_arrival_and_needs_every_event():
    events = ("payment.created", "payment.pending", "payment.success")
    arrivals = [
        ("payment.created", "p1", "a", 1.0, True),
        ("payment.pending", "p1", "b", 1.2, True),
        ("payment.success", "p1", "c", 1.5, True),
        ("payment.created", "p2", "d", 1.1, True),
        ("payment.pending", "p2", "e", 1.3, True),
        ("payment.success", "p2", "f", 1.9, True),
        ("payment.success", "p2", "f", 2.5, True),  # a repeat: the gate's business, not the clock's
        ("payment.success", "other", "g", 3.0, True),  # not this burst's
    ]
    assert checks.last_arrival(arrivals, ["p1", "p2"], events) == 1.9
    assert checks.last_arrival(arrivals[:5], ["p1", "p2"], events) is None
    assert checks.last_arrival(arrivals, ["p1", "p3"], events) is None
    assert checks.last_arrival([], [], events) is None


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.usefixtures("paygate_services")  # the bench runs on the suite's servers
def test_quick_bench_runs_green_with_its_gates(tmp_path):
    """The whole suite in --quick mode: gates must hold; speed is reported, never asserted."""
    env = {k: v for k, v in os.environ.items() if k != "PAYGATE_QUEUE"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "latest-quick.json").read_text())
    assert result["gates_ok"]
    assert "| B1 create throughput, c16 (req/s) |" in done.stdout
    assert "| B7 burst until the last payment.success (s) |" in done.stdout
    for bench in ("B1", "B2", "B3", "B4", "B5", "B7"):
        assert result["runs"][0][bench]["gates"], bench
    burst = result["runs"][0]["B7"]["metrics"]
    assert burst["payments"] == 100 and burst["seconds"] > 0
    assert "scaling" not in result  # the quick profile keeps CI's ~35 s


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.usefixtures("paygate_services")  # the bench runs on the suite's servers
def test_worker_scaling_bench_drains_with_one_and_two_worker_processes(tmp_path):
    """``python -m bench.scaling``: every drain's gates hold with each worker count, and the
    second count really ran two worker processes (their pools show in PostgreSQL)."""
    env = {k: v for k, v in os.environ.items() if k != "PAYGATE_QUEUE"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.scaling", "--workers", "1,2", "--payments", "30"]
        + ["--results-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-scaling.json")
    result = json.loads(path.read_text())
    assert result["gates_ok"]
    assert set(result["counts"]) == {"1", "2"}
    for runs in result["counts"].values():
        assert all(run["gates"] and run["metrics"]["payments"] == 30 for run in runs)
    one, two = (result["counts"][c][0]["metrics"]["connections"] for c in ("1", "2"))
    assert two > one
    assert "| 2 |" in done.stdout


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.usefixtures("paygate_services")  # its statement figure runs on the suite's server
def test_floors_bench_measures_each_part(tmp_path):
    """``python -m bench.floors``: the empty app answered every request 201 under wrk (it
    raises otherwise), every part has a figure, and the embedded server ``bench.create_cpu``
    started left no data directory behind. Never timed."""
    tmp = Path(tempfile.gettempdir())
    before = set(tmp.glob("paygate-create-cpu-*"))
    done = subprocess.run(
        [sys.executable, "-m", "bench.floors", "--seconds", "1", "--statements", "300"]
        + ["--creates", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["server"] is not None:  # None only without wrk
        assert figures["server"]["server_ms"] > 0 and figures["server"]["requests_per_s"] > 0
    assert figures["statement"]["psycopg_us"] > 0 and figures["statement"]["libpq_us"] > 0
    assert figures["harness_ms"] > 0
    assert figures["create"]["payments"] == 60
    assert figures["create"]["api_ms"] > 0 and figures["create"]["postgres_ms"] > 0
    assert set(tmp.glob("paygate-create-cpu-*")) <= before


def test_the_printed_tables_have_as_many_columns_in_every_row():
    """Markdown tables: the header, the separator and every row name the same number of
    cells (a separator with one cell too many renders as no table at all)."""
    runs = [
        {
            "B1": {
                "metrics": {"throughput_rps": 800.0, "p50_ms": 18.0, "p99_ms": 48.0},
                "cpu_ms_per_op": {"api": 1.2, "worker": 0.0, "postgres": 0.7, "receiver": 0.0},
            }
        }
        for _ in range(2)
    ]
    med = report.medians(runs)
    result = {
        "runs": runs,
        "targets": report.targets(med),
        "leak_check": report.leak_check([300.0, 301.0]),
    }
    text = report.table(result)
    for block in text.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            assert len({row.count("|") for row in rows}) == 1, block
