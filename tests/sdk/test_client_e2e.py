"""paygate_client against a real gateway: gunicorn API and Huey worker processes on the real
PostgreSQL and Redis, deliveries to a real HTTP receiver. One gateway for the whole tour."""

from __future__ import annotations

import json
import uuid

import pytest
from paygate_client import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    Paygate,
    SignatureVerificationError,
    webhooks,
)

from tests.fixtures import wait_for

pytestmark = pytest.mark.e2e

KEY, SECRET = "key_test_abc123", "secret_test_xyz789"


def deliveries(httpserver, event: str, resource_id: str) -> list:
    found = []
    for request, _ in list(httpserver.log):
        body = json.loads(request.get_data())
        resource = body["data"].get("payment") or body["data"].get("refund") or {}
        if body["event"] == event and resource.get("id") == resource_id:
            found.append(request)
    return found


def test_the_client_tour_against_a_real_gateway(gateway_factory, httpserver):
    httpserver.expect_request("/hooks", method="POST").respond_with_data("ok")
    httpserver.expect_request("/ep", method="POST").respond_with_data("ok")
    gateway = gateway_factory(TEST_PROCESSING_DELAY="300")
    gateway.start_api()
    gateway.start_worker()
    gateway.wait_healthy(worker=True)
    client = Paygate(KEY, SECRET, base_url=gateway.url)

    # Webhooks: the primary URL, and a generated (Standard Webhooks) secret.
    assert client.webhooks.set_url(httpserver.url_for("/hooks")).webhook_url.endswith("/hooks")
    secret = client.webhooks.rotate_secret().webhook_secret
    assert secret.startswith("whsec_") and secret != "whsec_test_abc123"
    assert client.webhooks.get_config().webhook_secret == secret

    # Order, then an idempotent create: the same key answers the same payment.
    order = client.orders.create(amount=50000, receipt="rcpt_sdk", notes={"cart": "7"})
    assert (order.amount, order.status, order.notes) == (50000, "created", {"cart": "7"})
    assert client.orders.get(order.id).updated_at is not None
    key = str(uuid.uuid4())
    first = client.payments.create(
        order_id=order.id, method="upi", vpa="success@test", idempotency_key=key
    )
    again = client.payments.create(
        order_id=order.id, method="upi", vpa="success@test", idempotency_key=key
    )
    assert again.id == first.id and again.raw == first.raw and first.status == "pending"

    # Settled by the worker.
    payment = client.payments.wait(first.id, timeout=20, interval=0.1)
    assert (payment.status, payment.captured, payment.vpa) == ("success", False, "success@test")

    # More payments for the lists: a declined one and card ones.
    card = {"number": "4242 4242 4242 4242", "expiry_month": 12, "expiry_year": 2040,
            "cvv": "123", "holder_name": "A Buyer"}  # fmt: skip
    failed = client.payments.create(order_id=order.id, method="upi", vpa="failure@test")
    cards = [client.payments.create(order_id=order.id, method="card", card=card) for _ in range(3)]
    assert {c.card_last4 for c in cards} == {"4242"} and cards[0].card_network == "visa"
    failed = client.payments.wait(failed.id, timeout=20, interval=0.1)
    assert (failed.status, failed.error_code) == ("failed", "PAYMENT_FAILED")
    for c in cards:
        assert client.payments.wait(c.id, timeout=20, interval=0.1).status == "success"

    page = client.payments.list(limit=2, offset=1, status="success")
    assert (page.total, page.limit, page.offset, len(page.data)) == (4, 2, 1, 2)
    assert page.has_more
    every = list(client.payments.list_all(page_size=3, status="success"))
    assert [p.id for p in every] == [c.id for c in reversed(cards)] + [payment.id]
    assert [p.id for p in client.payments.list_all(method="upi", order_id=order.id)] == [
        failed.id,
        payment.id,
    ]
    assert list(client.payments.list_all(status="success", method="upi", search="nomatch")) == []

    # Partial capture, partial refunds within it, and the refusal beyond.
    captured = client.payments.capture(payment.id, amount=40000)
    assert (captured.captured, captured.amount_captured) == (True, 40000)
    refund_one = client.refunds.create(payment.id, 15000, reason="one")
    refund_two = client.refunds.create(payment.id, 20000)
    with pytest.raises(InvalidRequestError) as too_much:
        client.refunds.create(payment.id, 5001)
    assert too_much.value.code == "BAD_REQUEST_ERROR" and too_much.value.http_status == 400
    assert "exceeds" in too_much.value.description and too_much.value.request_id
    for refund in (refund_one, refund_two):
        done = client.refunds.wait(refund.id, timeout=20, interval=0.1)
        assert (done.status, done.payment_id) == ("processed", payment.id)
        assert done.processed_at is not None
    assert client.refunds.get(refund_one.id).reason == "one"

    # Errors carry the contract's code.
    with pytest.raises(NotFoundError) as missing:
        client.payments.get("pay_0000000000000000")
    assert missing.value.code == "NOT_FOUND_ERROR" and missing.value.description == (
        "Payment not found"
    )
    with pytest.raises(InvalidRequestError) as small:
        client.orders.create(amount=99)
    assert (small.value.code, small.value.field) == ("BAD_REQUEST_ERROR", "amount")
    with pytest.raises(InvalidRequestError) as vpa:
        client.payments.create(order_id=order.id, method="upi", vpa="not-a-vpa")
    assert vpa.value.code == "INVALID_VPA"
    with pytest.raises(AuthenticationError):
        Paygate(KEY, "wrong", base_url=gateway.url).orders.get(order.id)

    # A real delivery verifies with the merchant's secret (Standard Webhooks), and only so.
    delivery = wait_for(lambda: deliveries(httpserver, "payment.success", payment.id), timeout=20)[
        0
    ]  # at least once: a repeat is the same bytes
    raw, headers = delivery.get_data(), dict(delivery.headers)
    assert "webhook-signature" in {name.lower() for name in headers}
    event = webhooks.verify(raw, headers, secret)
    assert event["data"]["payment"]["id"] == payment.id and event["event"] == "payment.success"
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(raw, headers, "whsec_" + "QUFB" * 8)
    wait_for(lambda: deliveries(httpserver, "refund.processed", refund_two.id), timeout=20)
    logs = list(client.webhooks.list_all(page_size=5))
    assert len(logs) == client.webhooks.list(limit=1).total >= 10
    assert {"payment.success", "refund.processed"} <= {log.event for log in logs}
    assert all(log.url == httpserver.url_for("/hooks") for log in logs)

    # The rest of the surface, once each: release, the escape hatch, test sends and retries,
    # further endpoints.
    released = client.payments.release(cards[0].id)
    assert released.released_at is not None and released.captured is False
    assert client.request("GET", f"/api/v1/payments/{cards[1].id}")["status"] == "success"
    sent = client.webhooks.test()
    assert sent["event"] == "webhook.test"
    assert client.webhooks.retry(logs[0].id)["status"] == "pending"
    endpoint = client.webhooks.endpoints.create(
        httpserver.url_for("/ep"), events=["refund.processed"], description="books"
    )
    assert endpoint.secret.startswith("whsec_") and endpoint.events == ["refund.processed"]
    listed = client.webhooks.endpoints.list()
    assert [e.id for e in listed] == ["primary", endpoint.id] and listed.data[0].primary
    assert listed.data[0].circuit.state == "closed"
    changed = client.webhooks.endpoints.update(endpoint.id, description=None, enabled=False)
    assert (changed.description, changed.enabled) == (None, False)
    rotated = client.webhooks.endpoints.rotate_secret(endpoint.id)
    assert rotated.secret != endpoint.secret and rotated.previous_secret_until is not None
    client.webhooks.endpoints.update(endpoint.id, enabled=True)
    assert client.webhooks.endpoints.test(endpoint.id)["endpoint_id"] == endpoint.id
    test_hook = wait_for(
        lambda: [r for r, _ in list(httpserver.log) if r.path == "/ep"], timeout=20
    )[0]
    assert webhooks.verify(test_hook.get_data(), test_hook.headers, rotated.secret)["event"] == (
        "webhook.test"
    )
    assert client.webhooks.endpoints.delete(endpoint.id) == {"id": endpoint.id, "deleted": True}
    with pytest.raises(NotFoundError):
        client.webhooks.endpoints.get(endpoint.id)
