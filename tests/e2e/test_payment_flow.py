"""End to end: real gunicorn API, real Huey consumer, real Redis and PostgreSQL, and a real
HTTP receiver standing in for the merchant's server."""

from __future__ import annotations

import json

import pytest

from paygate.services.processing import INLINE_WAIT_SECONDS
from tests.e2e.helpers import moment, settled, signed_payload
from tests.factories import create_payment
from tests.fixtures import set_webhook_url, wait_for

pytestmark = pytest.mark.e2e


def pay(gateway, method_body: dict, amount: int = 50000) -> dict:
    created = create_payment(gateway, amount, method_body)
    assert created["status"] == "pending"
    return created


def test_upi_payment_settles_and_the_signed_webhook_arrives(ctx, gateway_factory, httpserver):
    httpserver.expect_request("/hooks", method="POST").respond_with_data("ok")
    set_webhook_url(ctx, httpserver.url_for("/hooks"))
    gateway = gateway_factory(TEST_PROCESSING_DELAY="1000")
    gateway.start_api()
    gateway.start_worker()
    gateway.wait_healthy(worker=True)

    payment = pay(gateway, {"method": "upi", "vpa": "user@paytm"})
    done = settled(gateway, f"/api/v1/payments/{payment['id']}")
    assert done["status"] == "success"
    # Settled by the worker's inline wait (the 1 s processing delay), not deferred to the
    # scheduler: the payment's own moments say so, whatever the machine's speed.
    took = (moment(done["updated_at"]) - moment(done["created_at"])).total_seconds()
    assert 1.0 <= took < 1.0 + INLINE_WAIT_SECONDS, took

    def success_hook():
        for request, _ in httpserver.log:
            if json.loads(request.get_data())["event"] == "payment.success":
                return request
        return None

    request = wait_for(success_hook, timeout=5.0, message="payment.success never arrived")
    payload = signed_payload(request)
    assert payload["data"]["payment"]["id"] == payment["id"]
    events = [json.loads(r.get_data())["event"] for r, _ in httpserver.log]
    assert {"payment.created", "payment.pending", "payment.success"} <= set(events)


def test_declined_payment_fails_with_payment_failed(gateway_factory):
    gateway = gateway_factory(TEST_PAYMENT_SUCCESS="false", TEST_PROCESSING_DELAY="1000")
    gateway.start_api()
    gateway.start_worker()
    payment = pay(gateway, {"method": "upi", "vpa": "user@okhdfc"})
    done = settled(gateway, f"/api/v1/payments/{payment['id']}")
    assert done["status"] == "failed"
    assert done["error_code"] == "PAYMENT_FAILED"
    status = gateway.api_call("GET", "/api/v1/test/jobs/status").json()
    assert status["worker_status"] == "running"
    assert status["completed"] >= 1
