"""The foundation's API surface, in-process against real PostgreSQL and Redis."""

from __future__ import annotations

from paygate.config import TEST_MERCHANT_ID
from paygate.services import payments
from tests.factories import create_order
from tests.fixtures import AUTH


def test_health_reports_database_redis_and_worker(api):
    result = api.simulate_get("/health")
    assert result.status_code == 200
    body = result.json
    assert body["status"] == "healthy"
    assert body["database"] == "connected"
    assert body["redis"] == "connected"
    assert body["worker"] == "stopped"  # no worker runs in-process
    assert body["timestamp"].endswith("Z")


def test_seeded_test_merchant_is_public(api):
    body = api.simulate_get("/api/v1/test/merchant").json
    assert body == {
        "id": TEST_MERCHANT_ID,
        "email": "test@example.com",
        "api_key": "key_test_abc123",
        "seeded": True,
    }


def test_order_create_and_read_back(api):
    order = create_order(api, receipt="rcpt_1", notes={"sku": "A-1"})
    assert order["id"].startswith("order_") and len(order["id"]) == len("order_") + 16
    assert order["merchant_id"] == TEST_MERCHANT_ID
    assert order["amount"] == 50000 and order["currency"] == "INR"
    assert order["status"] == "created"
    read = api.simulate_get(f"/api/v1/orders/{order['id']}", headers=AUTH).json
    assert {k: read[k] for k in order} == order
    public = api.simulate_get(f"/api/v1/orders/{order['id']}/public").json
    assert public["amount"] == 50000 and public["status"] == "created"
    assert public["merchant_name"] == "Test Merchant"


def test_wrong_credentials_answer_401_in_the_envelope(api):
    result = api.simulate_post(
        "/api/v1/orders",
        json={"amount": 500},
        headers={"X-Api-Key": "key_test_abc123", "X-Api-Secret": "nope"},
    )
    assert result.status_code == 401
    assert result.json["error"]["code"] == "AUTHENTICATION_ERROR"
    assert result.json["error"]["description"] == "Invalid API credentials"


def test_small_amount_is_a_bad_request(api):
    result = api.simulate_post("/api/v1/orders", json={"amount": 99}, headers=AUTH)
    assert result.status_code == 400
    assert result.json["error"] == {
        "code": "BAD_REQUEST_ERROR",
        "description": "amount must be at least 100",
        "field": "amount",
        "request_id": result.headers["Request-Id"],
    }


def test_payment_answers_pending_then_the_worker_path_settles_it(ctx, api):
    order = create_order(api)
    result = api.simulate_post(
        "/api/v1/payments",
        json={"order_id": order["id"], "method": "upi", "vpa": "user@paytm"},
        headers=AUTH,
    )
    assert result.status_code == 201, result.text
    payment = result.json
    assert payment["status"] == "pending" and payment["vpa"] == "user@paytm"
    assert payment["amount"] == 50000 and payment["currency"] == "INR"
    assert payments.process(ctx, payment["id"]) == "success"
    assert payments.process(ctx, payment["id"]) == "skipped"  # a second run changes nothing
    read = api.simulate_get(f"/api/v1/payments/{payment['id']}", headers=AUTH).json
    assert read["status"] == "success" and read["captured"] is False
    assert api.simulate_get(f"/api/v1/orders/{order['id']}", headers=AUTH).json["status"] == "paid"


def test_declined_payment_records_payment_failed(make_ctx, api):
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false")
    order = create_order(api)
    payment = api.simulate_post(
        "/api/v1/payments",
        json={
            "order_id": order["id"],
            "method": "card",
            "card": {
                "number": "4111 1111 1111 1111",
                "expiry_month": "12",
                "expiry_year": "30",
                "cvv": "123",
                "holder_name": "A Buyer",
            },
        },
        headers=AUTH,
    ).json
    assert payment["card_network"] == "visa" and payment["card_last4"] == "1111"
    assert "card" not in payment and "number" not in str(payment)
    assert payments.process(ctx, payment["id"]) == "failed"
    read = api.simulate_get(f"/api/v1/payments/{payment['id']}/public").json
    assert read["status"] == "failed"
    assert read["error_code"] == "PAYMENT_FAILED"
    assert read["error_description"] == "Payment processing failed"


def test_unknown_route_and_malformed_json_use_the_envelope(api):
    missing = api.simulate_get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "NOT_FOUND_ERROR"
    bad = api.simulate_post("/api/v1/orders", body=b"{not json", headers=AUTH)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_job_status_counts_from_the_record(ctx, api):
    order = create_order(api)
    api.simulate_post(
        "/api/v1/payments",
        json={"order_id": order["id"], "method": "upi", "vpa": "a@b"},
        headers=AUTH,
    )
    status = api.simulate_get("/api/v1/test/jobs/status").json
    assert status == {
        "pending": 1,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "worker_status": "stopped",
    }


def test_the_public_endpoint_refuses_to_pay_a_paid_order_but_the_merchant_may(ctx, api):
    order = create_order(api)
    body = {"order_id": order["id"], "method": "upi", "vpa": "user@paytm"}
    first = api.simulate_post("/api/v1/payments/public", json=body)
    assert first.status_code == 201
    assert payments.process(ctx, first.json["id"]) == "success"
    again = api.simulate_post("/api/v1/payments/public", json=body)
    assert again.status_code == 400
    assert again.json["error"]["description"] == "Order already paid"
    merchant_again = api.simulate_post("/api/v1/payments", json=body, headers=AUTH)
    assert merchant_again.status_code == 201
