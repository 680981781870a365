"""B1-B3: creating payments under load (worker stopped, then running) and end to end; B7: a
burst of creates with the worker running, until the last ``payment.success``."""

from __future__ import annotations

import time

from . import checks
from .harness import Harness, wait_until
from .load import (
    LoadResult,
    percentile,
    run_async,
    run_python,
    run_wrk,
    session,
    wrk_available,
)

CREATION_EVENTS = ("payment.created", "payment.pending")
E2E_EVENTS = (*CREATION_EVENTS, "payment.success")


def _load(h: Harness) -> LoadResult:
    p = h.profile
    if wrk_available():
        return run_wrk(h.gateway.url, h.orders, p.clients, p.load_seconds)
    result, _ = run_python(h.gateway.url, h.orders, p.clients, seconds=p.load_seconds)
    return result


def _load_metrics(result: LoadResult) -> dict:
    return {
        "throughput_rps": round(result.throughput, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "requests": result.requests,
        "generator": result.generator,
    }


def b1_create(h: Harness) -> dict:
    """POST /api/v1/payments, 16 clients, worker stopped: the API and the database alone."""
    h.reset()
    result = _load(h)
    h.quiesce()
    payments = len(h.payment_ids())
    queued = h.queue_length()
    gates = {
        "all_201": checks.all_created(result.not_created, result.errors),
        "rows": checks.rows_match_answers(payments, result.requests, h.profile.clients),
        "outbox": checks.outbox_once_per_payment(h.outbox_counts(), payments, 0),
        "enqueued_after_commit": checks.jobs_enqueued(queued, 2 * payments, h.worker_threads),
    }
    return {"metrics": _load_metrics(result), "gates": gates, "ops": payments}


def b2_create_with_worker(h: Harness) -> dict:
    """The same load with the worker settling and delivering at the same time."""
    h.reset()
    h.gateway.resume_worker()
    result = _load(h)
    h.gateway.pause_worker()
    h.quiesce()
    payments = len(h.payment_ids())
    states = h.payment_states()
    settled = payments - states.get("pending", 0)
    arrivals = h.receiver("dump")
    stats = h.receiver("stats")
    gates = {
        "all_201": checks.all_created(result.not_created, result.errors),
        "rows": checks.rows_match_answers(payments, result.requests, h.profile.clients),
        "outbox": checks.outbox_once_per_payment(h.outbox_counts(), payments, settled),
        "signatures": checks.no_bad_signatures(stats["bad_signatures"]),
        "no_duplicate_webhooks": _no_duplicates(arrivals),
    }
    metrics = _load_metrics(result)
    metrics.update(settled_during_load=settled, webhooks_during_load=stats["received"])
    return {"metrics": metrics, "gates": gates, "ops": payments}


def _no_duplicates(arrivals: list) -> checks.Gate:
    """At-least-once may repeat a delivery; under this load it must not (one webhook-id once)."""
    seen: dict[str, int] = {}
    for arrival in arrivals:
        seen[arrival[2]] = seen.get(arrival[2], 0) + 1
    repeated = sum(1 for n in seen.values() if n > 1)
    return checks.gate(repeated == 0, f"{len(arrivals)} deliveries, {repeated} repeated")


def b3_end_to_end(h: Harness) -> dict:
    """Create -> payment.success received by the merchant, paced, processing delay 0."""
    p = h.profile
    h.reset()
    h.gateway.resume_worker()
    client = session()
    sent: dict[str, float] = {}
    not_created = 0
    interval = 1.0 / p.e2e_rate
    start = time.monotonic() + 0.2
    for i in range(p.e2e_payments):
        time.sleep(max(0.0, start + i * interval - time.monotonic()))
        body = {"order_id": h.orders[i % len(h.orders)], "method": "upi", "vpa": "bench@okaxis"}
        began = time.monotonic()
        answer = client.post(h.gateway.url + "/api/v1/payments", json=body, timeout=30)
        if answer.status_code != 201:
            not_created += 1
            continue
        sent[answer.json()["id"]] = began
    expected = len(sent) * len(E2E_EVENTS)
    wait_until(lambda: h.received() >= expected, timeout=30, interval=0.1)
    wait_until(lambda: h.delivery_states().get("success", 0) >= expected, timeout=10)
    arrivals = h.receiver("dump")
    success_at = {a[1]: a[3] for a in arrivals if a[0] == "payment.success"}
    latencies = [success_at[pid] - began for pid, began in sent.items() if pid in success_at]
    gates = {
        "all_201": checks.all_created(not_created, 0),
        "final": checks.all_final(h.payment_states(), len(sent)),
        "signatures": checks.no_bad_signatures(h.receiver("stats")["bad_signatures"]),
        "one_webhook_each": checks.one_webhook_per_event(arrivals, sent, E2E_EVENTS),
        "delivered": checks.deliveries_done(h.delivery_states(), expected),
    }
    metrics = {
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round(max(latencies, default=0) * 1000, 2),
        "payments": len(sent),
    }
    return {"metrics": metrics, "gates": gates, "ops": len(sent)}


def b7_burst(h: Harness) -> dict:
    """N payments created at 16 concurrent keep-alive creates with the worker running from the
    start: seconds from the first create sent until the receiver holds every payment's
    ``payment.created``, ``payment.pending`` and ``payment.success``."""
    p = h.profile
    h.reset()
    h.gateway.resume_worker()
    result, created = run_async(h.gateway.url, h.orders, p.clients, p.burst_payments)
    started = result.extra["started_at"]
    expected = len(created) * len(E2E_EVENTS)
    wait_until(lambda: h.received() >= expected, timeout=60, interval=0.02)
    wait_until(lambda: h.delivery_states().get("success", 0) >= expected, timeout=10)
    arrivals = h.receiver("dump")
    done_at = checks.last_arrival(arrivals, created, E2E_EVENTS)
    gates = checks.burst_gates(
        sent=result.extra["sent"],
        created=created,
        not_created=result.not_created,
        errors=result.errors,
        states=h.payment_states(),
        arrivals=arrivals,
        bad_signatures=h.receiver("stats")["bad_signatures"],
        delivery_states=h.delivery_states(),
        events=E2E_EVENTS,
    )
    metrics = {
        "seconds": None if done_at is None else round(done_at - started, 3),
        "creates_seconds": round(result.seconds, 3),
        "create_p50_ms": round(result.p50_ms, 2),
        "create_p99_ms": round(result.p99_ms, 2),
        "payments": len(created),
        "generator": result.generator,
    }
    return {"metrics": metrics, "gates": gates, "ops": len(created)}
