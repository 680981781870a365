"""B4 and B5: how fast the worker empties a backlog (settle + deliver, then delivery alone).

The backlog is built while the worker is stopped; the clock starts the instant it resumes and
stops when the receiver holds every expected webhook.
"""

from __future__ import annotations

import time
import uuid

from paygate.wire import compact_json

from . import checks
from .harness import Harness, random_id, wait_until
from .load import run_python
from .scenarios import E2E_EVENTS


def _drain(h: Harness, expected_webhooks: int, timeout: float) -> float:
    """Resume the worker; seconds until the receiver has ``expected_webhooks`` deliveries."""
    started = time.monotonic()
    h.gateway.resume_worker()
    wait_until(lambda: h.received() >= expected_webhooks, timeout=timeout, interval=0.02)
    return time.monotonic() - started


def b4_backlog_drain(h: Harness) -> dict:
    """N pending payments (created through the API with the worker stopped) settled and all
    their webhooks (created, pending, success) delivered: payments per second."""
    n = h.profile.drain_payments
    h.reset()
    created_result, created = run_python(h.gateway.url, h.orders, h.profile.clients, count=n)
    expected = len(created) * len(E2E_EVENTS)
    elapsed = _drain(h, expected, timeout=120)
    wait_until(lambda: h.delivery_states().get("success", 0) >= expected, timeout=10)
    arrivals = h.receiver("dump")
    gates = {
        "all_201": checks.all_created(created_result.not_created, created_result.errors),
        "final": checks.all_final(h.payment_states(), len(created)),
        "signatures": checks.no_bad_signatures(h.receiver("stats")["bad_signatures"]),
        "one_webhook_each": checks.one_webhook_per_event(arrivals, created, E2E_EVENTS),
        "delivered": checks.deliveries_done(h.delivery_states(), expected),
    }
    metrics = {
        "payments_per_s": round(len(created) / elapsed, 1),
        "webhooks_per_s": round(expected / elapsed, 1),
        "seconds": round(elapsed, 2),
        "payments": len(created),
    }
    return {"metrics": metrics, "gates": gates, "ops": len(created)}


def _insert_deliveries(h: Harness, count: int) -> tuple[list[str], list[str]]:
    """``count`` due payment.success deliveries, written as the outbox writes them."""
    ids, resources, bodies = [], [], []
    stamp = int(time.time())
    for _ in range(count):
        payment_id = random_id("pay_")
        payload = {
            "event": "payment.success",
            "timestamp": stamp,
            "data": {
                "payment": {
                    "id": payment_id,
                    "order_id": h.orders[0],
                    "amount": 50000,
                    "currency": "INR",
                    "method": "upi",
                    "vpa": "bench@okaxis",
                    "status": "success",
                    "created_at": "2024-01-15T10:31:00Z",
                }
            },
        }
        ids.append(str(uuid.uuid4()))
        resources.append(payment_id)
        bodies.append(compact_json(payload).decode())
    h.db.execute(
        """INSERT INTO webhook_logs (id, merchant_id, event, resource_id, payload, body,
                                     next_retry_at, enqueued_at)
           SELECT i, %s, 'payment.success', r, b::jsonb, b, now(), now()
             FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS t(i, r, b)""",
        (h.merchant_id, ids, resources, bodies),
    )
    return ids, resources


def b5_webhook_delivery(h: Harness) -> dict:
    """Deliveries alone: N due webhook_logs rows enqueued as the dispatcher does; per second."""
    n = h.profile.webhook_only
    h.reset()
    ids, resources = _insert_deliveries(h, n)
    h.queue().dispatcher.webhooks(ids)
    elapsed = _drain(h, n, timeout=120)
    wait_until(lambda: h.delivery_states().get("success", 0) >= n, timeout=10)
    arrivals = h.receiver("dump")
    gates = {
        "signatures": checks.no_bad_signatures(h.receiver("stats")["bad_signatures"]),
        "one_webhook_each": checks.one_webhook_per_event(arrivals, resources, ("payment.success",)),
        "delivered": checks.deliveries_done(h.delivery_states(), n),
    }
    metrics = {"webhooks_per_s": round(n / elapsed, 1), "seconds": round(elapsed, 2)}
    return {"metrics": metrics, "gates": gates, "ops": n}
