"""Turning runs into results: medians of the runs, the targets, the ratios to B6, a table."""

from __future__ import annotations

import os
import platform
import statistics
from typing import Any

# (key, label, unit, comparison, target, Node.js/Express/BullMQ figure): issue 20's targets
# and the Node.js implementation measured beside Paygate there (medians of two rounds).
ROWS = [
    ("B1.throughput_rps", "B1 create throughput, c16", "req/s", ">=", 1500, "1,425"),
    ("B1.p50_ms", "B1 create p50, c16", "ms", None, None, "10.7"),
    ("B1.p99_ms", "B1 create p99, c16", "ms", "<=", 23.0, "22.9"),
    ("B2.throughput_rps", "B2 create throughput, worker running", "req/s", ">=", 900, "870"),
    ("B2.p99_ms", "B2 create p99, worker running", "ms", "<=", 42.0, "41.8"),
    ("B3.p50_ms", "B3 end to end p50", "ms", "<=", 10.0, "9.8"),
    ("B3.p99_ms", "B3 end to end p99", "ms", "<=", 19.0, "18.7"),
    ("B4.payments_per_s", "B4 drain (settled + delivered)", "payments/s", ">=", 520, "343"),
    ("B5.webhooks_per_s", "B5 webhook delivery", "webhooks/s", ">=", 800, "255"),
    ("B7.seconds", "B7 burst until the last payment.success", "s", "<=", 2.2, "2.19"),
    ("B6.pgbench_insert_tps_c1", "B6 pgbench INSERT, 1 client", "tps", None, None, ""),
    ("B6.pgbench_insert_tps_c16", "B6 pgbench INSERT, 16 clients", "tps", None, None, ""),
    ("B6.huey_noop_tasks_per_s", "B6 Huey no-op tasks", "tasks/s", None, None, ""),
    ("rss.peak_total_mb", "Peak RSS, API + worker under load", "MB", "<=", 400, ""),
]

# key -> (ceiling key, the part of the figure that is a ratio target, if any)
RATIOS = {
    "B1.throughput_rps": ("B6.pgbench_insert_tps_c16", None),
    "B2.throughput_rps": ("B6.pgbench_insert_tps_c16", None),
    "B4.payments_per_s": ("B6.huey_noop_tasks_per_s", None),
    "B5.webhooks_per_s": ("B6.huey_noop_tasks_per_s", None),
}
NODE_RATIOS: dict[str, str] = {}

# CPU ms per operation: benchmark -> (the parts summed, target, Node.js figure and its parts)
CPU_TARGETS = {
    "B1": (("api", "postgres"), 1.0, "1.12 (API + PostgreSQL + Redis)"),
    "B4": (("worker", "postgres"), 3.5, "3.1-3.5 (worker + PostgreSQL + Redis)"),
}


def flatten(run: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for bench, result in run.items():
        for key, value in (result.get("metrics") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                flat[f"{bench}.{key}"] = value
    return flat


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    flats = [flatten(run) for run in runs]
    keys = sorted({k for f in flats for k in f})
    return {k: statistics.median([f[k] for f in flats if k in f]) for k in keys}


def holds(value: float | None, comparison: str | None, target: float | None) -> bool | None:
    if comparison is None or value is None:
        return None
    return value >= target if comparison == ">=" else value <= target


def leak_check(end_rss: list[float]) -> dict[str, Any]:
    """No growth across consecutive runs: the last run ends within 10% (and 15 MB) of the
    first. One run cannot say anything."""
    if len(end_rss) < 2:
        return {"ok": None, "detail": "needs at least 2 runs", "end_rss_mb": end_rss}
    growth = end_rss[-1] - end_rss[0]
    ok = growth <= max(15.0, 0.10 * end_rss[0])
    return {
        "ok": ok,
        "detail": f"{growth:+.1f} MB from run 1 to run {len(end_rss)}",
        "end_rss_mb": end_rss,
    }


def targets(med: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for key, label, unit, comparison, target, node in ROWS:
        value = med.get(key)
        ratio = None
        ratio_holds = None
        if key in RATIOS and value is not None and med.get(RATIOS[key][0]):
            ceiling_key, wanted = RATIOS[key]
            ratio = round(value / med[ceiling_key], 3)
            ratio_holds = None if wanted is None else ratio >= wanted
        verdict = holds(value, comparison, target)
        if ratio_holds is not None:
            verdict = verdict and ratio_holds
        rows.append(
            {
                "key": key,
                "label": label,
                "unit": unit,
                "value": value,
                "target": None if comparison is None else f"{comparison} {target:,}",
                "ratio_to_b6": ratio,
                "holds": verdict,
                "node": node,
                "node_ratio": NODE_RATIOS.get(key, ""),
            }
        )
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def table(result: dict[str, Any]) -> str:
    runs = result["runs"]
    head = "| benchmark | median | " + " | ".join(f"run {i + 1}" for i in range(len(runs)))
    head += " | target | holds | ratio to B6 | Node.js |"
    lines = [head, "|" + "---|" * (len(runs) + 6)]
    flats = [flatten(r) for r in runs]
    for row in result["targets"]:
        per_run = " | ".join(_fmt(f.get(row["key"])) for f in flats)
        verdict = {True: "yes", False: "**no**", None: ""}[row["holds"]]
        ratio = "" if row["ratio_to_b6"] is None else f"{row['ratio_to_b6']:.3f}"
        node = row["node"] + (f" ({row['node_ratio']} x)" if row["node_ratio"] else "")
        lines.append(
            f"| {row['label']} ({row['unit']}) | {_fmt(row['value'])} | {per_run} | "
            f"{row['target'] or ''} | {verdict} | {ratio} | {node} |"
        )
    lines += ["", *cpu_table(runs)]
    leak = result["leak_check"]
    lines.append("")
    lines.append(
        f"Leak check (RSS at the end of each run, API + worker): "
        f"{', '.join(f'{v:.0f} MB' for v in leak['end_rss_mb'])}: "
        f"{ {True: 'no growth', False: 'GROWTH', None: 'n/a'}[leak['ok']] } "
        f"({leak['detail']})"
    )
    failed = [
        f"run {i + 1} {bench} {name}: {g['detail']}"
        for i, run in enumerate(runs)
        for bench, res in run.items()
        for name, g in (res.get("gates") or {}).items()
        if not g["ok"]
    ]
    lines.append(
        "Gates (0 non-2xx, 0 bad signatures, every payment final, one webhook per "
        "payment event): " + ("all passed" if not failed else "FAILED")
    )
    lines += [f"  - {f}" for f in failed]
    return "\n".join(lines)


CPU_PARTS = ("api", "worker", "postgres", "receiver")
CPU_OPS = {
    "B1": "payment created",
    "B2": "payment created",
    "B3": "payment, end to end",
    "B4": "payment created + drained",
    "B5": "webhook delivered",
    "B7": "payment, burst (created + settled + delivered)",
}


def cpu_targets(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 20's CPU-per-operation targets: the median over the runs of the named parts' sum
    (B1: API + PostgreSQL per create; B4: worker + PostgreSQL per drained payment)."""
    rows = []
    for bench, (parts, target, node) in CPU_TARGETS.items():
        per = [r[bench]["cpu_ms_per_op"] for r in runs if "cpu_ms_per_op" in r.get(bench, {})]
        value = (
            round(statistics.median(sum(p.get(part, 0.0) for part in parts) for p in per), 3)
            if per
            else None
        )
        rows.append(
            {
                "bench": bench,
                "parts": list(parts),
                "value": value,
                "target": f"<= {target}",
                "holds": holds(value, "<=", target),
                "node": node,
            }
        )
    return rows


def cpu_table(runs: list[dict[str, Any]]) -> list[str]:
    """CPU milliseconds per operation (medians): what each part costs, whatever else the
    machine was doing while the wall-clock figures were taken; with issue 20's targets."""
    lines = [
        "| CPU ms per operation (median) | "
        + " | ".join(CPU_PARTS)
        + " | total | target | holds | Node.js |",
        "|" + "---|" * (len(CPU_PARTS) + 5),
    ]
    targets_by_bench = {row["bench"]: row for row in cpu_targets(runs)}
    for bench, op in CPU_OPS.items():
        per = [r[bench]["cpu_ms_per_op"] for r in runs if "cpu_ms_per_op" in r.get(bench, {})]
        if not per:
            continue
        values = [statistics.median([p.get(part, 0.0) for p in per]) for part in CPU_PARTS]
        cells = " | ".join(f"{v:.2f}" for v in values)
        wanted = targets_by_bench.get(bench)
        if wanted:
            verdict = {True: "yes", False: "**no**", None: ""}[wanted["holds"]]
            extra = (
                f"{' + '.join(wanted['parts'])} {wanted['value']:.2f} {wanted['target']} "
                f"| {verdict} | {wanted['node']}"
            )
        else:
            extra = " |  | "
        lines.append(f"| {bench} per {op} | {cells} | {sum(values):.2f} | {extra} |")
    return lines


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
