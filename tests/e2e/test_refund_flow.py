"""Refunds end to end: real gunicorn API, real Huey consumer with its janitor, real Redis and
PostgreSQL, and a real HTTP receiver standing in for the merchant's server."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.helpers import moment, settled, signed_payload
from tests.e2e.test_payment_flow import pay
from tests.fixtures import set_webhook_url, wait_for

pytestmark = pytest.mark.e2e

# Above the worker's inline wait: the refund job defers and the janitor brings it back, the
# path a production refund (3-5 s) takes.
DELAY_MS = 2500


def hooks_for(httpserver, resource_id: str) -> dict[str, object]:
    found = {}
    for request, _ in httpserver.log:
        body = json.loads(request.get_data())
        if body["data"].get("refund", {}).get("id") == resource_id:
            found[body["event"]] = request
    return found


def arrived(ctx, gateway, predicate, what: str):
    """Wait for deliveries; on a timeout, say what the outbox holds and what the worker said."""
    try:
        return wait_for(predicate, timeout=15.0, interval=0.1)
    except AssertionError:
        with ctx.db.connection() as conn:
            rows = conn.execute(
                "SELECT event, status, attempts, response_code FROM webhook_logs ORDER BY created_at"
            ).fetchall()
        raise AssertionError(f"{what} did not arrive; outbox {rows}; {gateway.tail()}") from None


def test_refund_is_processed_by_the_worker_and_signed_events_arrive(
    ctx, gateway_factory, httpserver
):
    httpserver.expect_request("/hooks", method="POST").respond_with_data("ok")
    set_webhook_url(ctx, httpserver.url_for("/hooks"))
    gateway = gateway_factory(TEST_PROCESSING_DELAY=str(DELAY_MS))
    gateway.start_api()
    gateway.start_worker()
    gateway.wait_healthy(worker=True)

    payment = pay(gateway, {"method": "upi", "vpa": "success@test"}, amount=10000)
    assert settled(gateway, f"/api/v1/payments/{payment['id']}")["status"] == "success"

    created = gateway.api_call(
        "POST", f"/api/v1/payments/{payment['id']}/refunds", json={"amount": 6000, "reason": "r"}
    )
    assert created.status_code == 201, created.text
    refund = created.json()
    assert refund["status"] == "pending" and refund["processed_at"] is None
    doomed = gateway.api_call(
        "POST",
        f"/api/v1/payments/{payment['id']}/refunds",
        json={"amount": 4000, "reason": "fail@test"},
    ).json()
    assert (
        gateway.api_call("GET", f"/api/v1/payments/{payment['id']}").json()["amount_refunded"]
        == 10000
    )

    done = settled(gateway, f"/api/v1/refunds/{refund['id']}")
    assert done["status"] == "processed"
    assert done["processed_at"] is not None
    assert (moment(done["processed_at"]) - moment(done["created_at"])).total_seconds() >= 2
    failed = settled(gateway, f"/api/v1/refunds/{doomed['id']}")
    assert failed["status"] == "failed" and failed["processed_at"] is None
    # The failed refund gave its amount back; the processed one keeps counting.
    assert (
        gateway.api_call("GET", f"/api/v1/payments/{payment['id']}").json()["amount_refunded"]
        == 6000
    )

    hooks = arrived(
        ctx,
        gateway,
        lambda: (
            (h := hooks_for(httpserver, refund["id"])).keys()
            >= {"refund.created", "refund.processed"}
            and h
        ),
        "refund.created and refund.processed",
    )
    for name in ("refund.created", "refund.processed"):
        payload = signed_payload(hooks[name])
        assert payload["data"]["refund"]["payment_id"] == payment["id"]
        assert payload["data"]["refund"]["amount"] == 6000
    processed = json.loads(hooks["refund.processed"].get_data())["data"]["refund"]
    assert processed["status"] == "processed" and processed["processed_at"] is not None
    arrived(
        ctx,
        gateway,
        lambda: "refund.failed" in hooks_for(httpserver, doomed["id"]),
        "refund.failed",
    )


def test_concurrent_refund_requests_over_http_never_exceed_the_amount(gateway_factory):
    gateway = gateway_factory(TEST_PROCESSING_DELAY="0")
    gateway.start_api(workers=2, threads=8)
    gateway.start_worker()
    payment = pay(gateway, {"method": "upi", "vpa": "success@test"}, amount=10000)
    assert settled(gateway, f"/api/v1/payments/{payment['id']}")["status"] == "success"
    amounts = [random.randint(1, 1500) for _ in range(50)]

    def attempt(amount: int):
        response = gateway.api_call(
            "POST", f"/api/v1/payments/{payment['id']}/refunds", json={"amount": amount}
        )
        return amount, response.status_code, response.json()

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(attempt, amounts))
    assert {status for _, status, _ in results} <= {201, 400}, results
    for _, status, body in results:
        if status == 400:
            assert body["error"]["description"] == "Refund amount exceeds available amount"
    accepted = sum(amount for amount, status, _ in results if status == 201)
    assert 0 < accepted <= 10000, amounts
    read = gateway.api_call("GET", f"/api/v1/payments/{payment['id']}").json()
    assert read["amount_refunded"] == accepted
