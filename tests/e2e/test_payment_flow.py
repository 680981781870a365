"""End to end: real gunicorn API, real Huey consumer, real Redis and PostgreSQL, and a real
HTTP receiver standing in for the merchant's server."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time

import pytest

from tests.factories import create_payment
from tests.fixtures import set_webhook_url, wait_for

pytestmark = pytest.mark.e2e

NODE_RESTRINGIFY = (
    "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>"
    "process.stdout.write(JSON.stringify(JSON.parse(s))))"
)


def restringify_with_node(body: bytes) -> bytes:
    return subprocess.run(
        ["node", "-e", NODE_RESTRINGIFY], input=body, capture_output=True, check=True
    ).stdout


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

    started = time.monotonic()
    payment = pay(gateway, {"method": "upi", "vpa": "user@paytm"})
    settled = wait_for(
        lambda: (
            (r := gateway.api_call("GET", f"/api/v1/payments/{payment['id']}").json())["status"]
            != "pending"
            and r
        ),
        timeout=3.0,
        message="payment not settled within 3 s",
    )
    assert settled["status"] == "success"
    assert time.monotonic() - started < 3.0

    def success_hook():
        for request, _ in httpserver.log:
            if json.loads(request.get_data())["event"] == "payment.success":
                return request
        return None

    request = wait_for(success_hook, timeout=5.0, message="payment.success never arrived")
    body = request.get_data()
    expected = hmac.new(b"whsec_test_abc123", body, hashlib.sha256).hexdigest()
    assert request.headers["X-Webhook-Signature"] == expected
    assert request.headers["Content-Type"] == "application/json"
    # Receivers often re-serialize before verifying: the bytes must survive that unchanged.
    assert restringify_with_node(body) == body
    payload = json.loads(body)
    assert payload["data"]["payment"]["id"] == payment["id"]
    assert isinstance(payload["timestamp"], int)
    events = [json.loads(r.get_data())["event"] for r, _ in httpserver.log]
    assert {"payment.created", "payment.pending", "payment.success"} <= set(events)


def test_declined_payment_fails_with_payment_failed(gateway_factory):
    gateway = gateway_factory(TEST_PAYMENT_SUCCESS="false", TEST_PROCESSING_DELAY="1000")
    gateway.start_api()
    gateway.start_worker()
    payment = pay(gateway, {"method": "upi", "vpa": "user@okhdfc"})
    settled = wait_for(
        lambda: (
            (r := gateway.api_call("GET", f"/api/v1/payments/{payment['id']}").json())["status"]
            != "pending"
            and r
        ),
        timeout=3.0,
    )
    assert settled["status"] == "failed"
    assert settled["error_code"] == "PAYMENT_FAILED"
    status = gateway.api_call("GET", "/api/v1/test/jobs/status").json()
    assert status["worker_status"] == "running"
    assert status["completed"] >= 1
