"""Database outage: PostgreSQL stopped for 10 s under traffic.

While the record is away the API must say so honestly: 503 in the contract's error envelope
(never a 500, never a traceback), ``/health`` unhealthy. When it is back the API recovers on its
own, and every payment acknowledged with a 201 before the outage settles and is announced.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from paygate.db import PROBE_EVERY_SECONDS
from tests.chaos.load import create_payments, payment_body
from tests.fixtures import AUTH

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

BEFORE = 150
OUTAGE_SECONDS = 10.0


class Prober:
    """Merchant traffic while the database is down, every answer kept."""

    def __init__(self, base_url: str, payment_id: str, order_id: str) -> None:
        self.calls = [
            ("GET", "/health", None),
            ("POST", "/api/v1/orders", {"amount": 5000}),
            ("POST", "/api/v1/payments", payment_body(1, order_id)),
            ("GET", f"/api/v1/payments/{payment_id}", None),
            ("GET", f"/api/v1/payments/{payment_id}/public", None),
            ("GET", "/api/v1/test/jobs/status", None),
        ]
        self.base_url = base_url
        self.answers: list[tuple[str, int, dict | str, float]] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def worker(self, offset: int) -> None:
        session = requests.Session()
        session.headers.update(AUTH)
        n = offset
        while not self.stop.is_set():
            method, path, body = self.calls[n % len(self.calls)]
            n += 1
            started = time.monotonic()
            try:
                resp = session.request(method, self.base_url + path, json=body, timeout=20)
                try:
                    doc: dict | str = resp.json()
                except ValueError:
                    doc = resp.text
                if resp.status_code == 503 and path != "/health":
                    doc = {**doc, "retry_after": resp.headers.get("Retry-After")}
                answer = (f"{method} {path}", resp.status_code, doc)
            except requests.RequestException as exc:
                answer = (f"{method} {path}", 0, repr(exc))
            with self._lock:
                self.answers.append((*answer, time.monotonic() - started))

    def run_for(self, seconds: float, threads: int = 6) -> None:
        workers = [threading.Thread(target=self.worker, args=(i,)) for i in range(threads)]
        for thread in workers:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in workers:
            thread.join()


def is_unavailable_envelope(doc) -> bool:
    error = doc.get("error") if isinstance(doc, dict) else None
    return (
        isinstance(error, dict)
        and error.get("code") == "SERVICE_UNAVAILABLE"
        and bool(error.get("description"))
        and "Traceback" not in str(doc)
    )


def test_database_outage_answers_503_and_loses_nothing_acknowledged(chaos_run, record_figures):
    run = chaos_run("outage", TEST_PROCESSING_DELAY="2000")
    run.start(consumers=2, concurrency=8)
    before = create_payments(run.gateway.url, BEFORE, clients=8)
    assert before.failures == [], before.failures[:5]
    acknowledged = list(before.payment_ids)
    pending_at_stop = run.pending(acknowledged)
    some = run.query("SELECT id, order_id FROM payments LIMIT 1")[0]

    run.servers.stop_postgres()
    prober = Prober(run.gateway.url, some["id"], some["order_id"])
    prober.run_for(OUTAGE_SECONDS)
    run.servers.start_postgres()

    # While down: only honest 503s (a write that raced the stop may have been acknowledged).
    outcomes = Counter((call, status) for call, status, _, _ in prober.answers)
    during = [a for a in prober.answers if a[1] != 201]
    assert during, "no request was answered during the outage"
    assert all(status == 503 for _, status, _, _ in during), outcomes
    for call, _, doc, _ in during:
        if call == "GET /health":
            assert doc["status"] == "unhealthy" and doc["database"] == "disconnected", doc
        else:
            assert is_unavailable_envelope(doc) and doc["retry_after"] == "1", doc
    acknowledged += [
        doc["id"]
        for call, status, doc, _ in prober.answers
        if status == 201 and call == "POST /api/v1/payments"
    ]

    # After: every API process recovers on its own at its next probe (a failed probe is not
    # repeated for PROBE_EVERY_SECONDS), at once and without a single 503 or timeout more.
    time.sleep(PROBE_EVERY_SECONDS)
    health = [requests.get(run.gateway.url + "/health", timeout=10) for _ in range(10)]
    assert [h.status_code for h in health] == [200] * 10, [h.text for h in health]
    after = create_payments(run.gateway.url, 20, clients=4)
    assert after.failures == [], after.failures[:5]
    drain, problem = run.try_drain(acknowledged + after.payment_ids, timeout=60)
    latencies = sorted(seconds for *_, seconds in prober.answers)
    record_figures(
        payments_before=len(before.payment_ids),
        pending_at_stop=pending_at_stop,
        outage_seconds=OUTAGE_SECONDS,
        requests_during_outage=len(prober.answers),
        answers=dict(Counter(status for _, status, _, _ in prober.answers)),
        slowest_answer_seconds=round(latencies[-1], 2),
        median_answer_seconds=round(latencies[len(latencies) // 2], 3),
        lost=run.pending(acknowledged),
        duplicates=run.duplicates(acknowledged),
        drain_seconds=drain,
    )
    assert problem is None, problem
    assert run.pending(acknowledged) == 0
    # Known-down fails fast: requests do not queue up behind the pool's 5 s timeout each (only
    # the ones already waiting when the database went away do).
    assert latencies[len(latencies) // 2] < 1.0, latencies
