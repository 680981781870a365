"""Metrics end to end: a real gunicorn API with two worker processes, a real worker with its
metrics server, real PostgreSQL, Redis and a real webhook receiver. Both /metrics answers are
valid Prometheus text, and their values move by exactly what was done: requests per route
(added up across the API's processes), payments by outcome, processor calls, a refund, webhook
deliveries, the queue's depth while no worker runs, and the janitor's rescue of tasks the
queue lost."""

from __future__ import annotations

import pytest
import requests

from paygate.embedded import free_port
from paygate.jobs.queue import new_huey
from tests.e2e.helpers import settled
from tests.factories import create_payment
from tests.fixtures import make_settings, set_webhook_url, wait_for
from tests.metrics_scrape import Scrape

pytestmark = pytest.mark.e2e

REQUESTS = "paygate_http_request_duration_seconds_count"
READS = 24  # GETs of one payment, spread over the API's two processes


def scrape(url: str) -> Scrape:
    answer = requests.get(url + "/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    return Scrape(answer.text)


def test_metrics_move_with_payments_refunds_and_deliveries(ctx, gateway_factory, httpserver):
    httpserver.expect_request("/hooks", method="POST").respond_with_data("ok")
    set_webhook_url(ctx, httpserver.url_for("/hooks"))
    worker_port = free_port()
    gateway = gateway_factory(
        PAYGATE_WORKER_METRICS_PORT=str(worker_port),
        PAYGATE_LOST_AFTER="0.5",  # a task the queue lost is rescued soon after the worker starts
    )
    gateway.start_api(workers=2)
    api = gateway.url
    worker = f"http://127.0.0.1:{worker_port}"
    before = scrape(api)
    for name in ("paygate_http_request_duration_seconds", "paygate_jobs_pending"):
        assert name in before.families

    # No worker yet: the payments wait in the record and in Redis.
    paid = [create_payment(api, 20000, {"method": "upi", "vpa": "success@test"}) for _ in range(3)]
    declined = create_payment(api, 20000, {"method": "upi", "vpa": "failure@test"})
    for _ in range(READS):
        assert gateway.api_call("GET", f"/api/v1/payments/{paid[0]['id']}").status_code == 200
    waiting = scrape(api)
    assert waiting.value("paygate_jobs_pending", kind="payments", state="due") == 4
    assert waiting.value("paygate_jobs_oldest_due_age_seconds", kind="payments") > 0
    settings = make_settings()
    huey = new_huey(settings)
    assert waiting.value("paygate_queue_length", queue=settings.queue_name) == 4
    # Counted in two processes, added up in one answer.
    route = "/api/v1/payments/{payment_id}"
    assert waiting.value(REQUESTS, route=route, method="GET", status="200") == READS
    assert waiting.value(REQUESTS, route="/api/v1/payments", method="POST", status="201") == 4
    assert waiting.value(REQUESTS, route="/api/v1/orders", method="POST", status="201") == 4
    assert not [r for r in waiting.labels(REQUESTS, "route") if "pay_" in r]
    assert waiting.value("paygate_payments_total", processor="test", outcome="created") == 4

    # The queue loses the four tasks (as a Redis restarted without its data would): the
    # janitor finds them in the record and dispatches them again.
    huey.storage.conn.delete(huey.storage.queue_key)
    gateway.start_worker()
    gateway.wait_healthy(worker=True)
    for payment in paid:
        assert settled(gateway, f"/api/v1/payments/{payment['id']}")["status"] == "success"
    assert settled(gateway, f"/api/v1/payments/{declined['id']}")["status"] == "failed"
    refund = gateway.api_call(
        "POST", f"/api/v1/payments/{paid[0]['id']}/refunds", json={"amount": 5000}
    )
    assert refund.status_code == 201, refund.text
    done = settled(gateway, f"/api/v1/refunds/{refund.json()['id']}")
    assert done["status"] == "processed"
    # Three events per payment (created, pending, success|failed), two for the refund.
    deliveries = 4 * 3 + 2
    wait_for(lambda: len(httpserver.log) >= deliveries, timeout=15, message=gateway.tail())

    def worker_counted():
        scraped = scrape(worker)
        if scraped.value("paygate_webhook_deliveries_total", outcome="delivered") < deliveries:
            return None
        return scraped

    moved = wait_for(worker_counted, timeout=10, message=gateway.tail())
    assert moved.value("paygate_payments_total", processor="test", outcome="success") == 3
    assert moved.value("paygate_payments_total", processor="test", outcome="failed") == 1
    assert moved.value("paygate_refunds_total", processor="test", outcome="processed") == 1
    assert moved.value("paygate_janitor_rescues_total", kind="payments") == 4
    calls = "paygate_processor_call_duration_seconds_count"
    assert moved.value(calls, processor="test", operation="charge", result="ok") == 4
    assert moved.value(calls, processor="test", operation="refund", result="ok") == 1
    assert moved.value("paygate_webhook_deliveries_total", outcome="delivered") == deliveries
    assert moved.value("paygate_webhook_delivery_duration_seconds_count", result="ok") == deliveries
    assert moved.value("paygate_worker_ready") == 1
    assert moved.value("paygate_workers_alive") == 1
    assert requests.get(worker + "/readyz", timeout=5).json()["status"] == "ready"
    assert requests.get(worker + "/livez", timeout=5).status_code == 200

    after = scrape(api)
    assert after.value("paygate_refunds_total", processor="test", outcome="created") == 1
    assert after.value("paygate_jobs_pending", kind="payments", state="due") == 0
    assert after.value("paygate_queue_length") == 0
    assert after.value(REQUESTS, route="/api/v1/payments/{payment_id}/refunds", status="201") == 1
