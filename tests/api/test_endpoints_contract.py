"""CONTRACT.md section 3, row by row, for the routes of the payments API: orders, payments
(private and public), capture, listing, the test merchant and job status."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from paygate.config import TEST_MERCHANT_ID
from paygate.services import payments
from tests.api.helpers import card, create_order, error_of, pay, pay_card, pay_upi
from tests.fixtures import AUTH, set_webhook_url

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_post_orders_answers_201_with_the_order(api):
    result = api.simulate_post(
        "/api/v1/orders",
        json={"amount": 50000, "currency": "INR", "receipt": "rcpt#1", "notes": {"k": "v"}},
        headers=AUTH,
    )
    assert result.status_code == 201
    order = result.json
    assert re.fullmatch(r"order_[A-Za-z0-9]{16}", order["id"])
    assert order["merchant_id"] == TEST_MERCHANT_ID
    assert (order["amount"], order["currency"], order["receipt"]) == (50000, "INR", "rcpt#1")
    assert order["notes"] == {"k": "v"} and order["status"] == "created"
    assert ISO.match(order["created_at"])


def test_order_defaults_currency_inr_receipt_null_notes_empty(api):
    order = create_order(api, amount=100)
    assert (order["currency"], order["receipt"], order["notes"]) == ("INR", None, {})


def test_get_order_answers_the_order_with_updated_at(api):
    order = create_order(api)
    read = api.simulate_get(f"/api/v1/orders/{order['id']}", headers=AUTH)
    assert read.status_code == 200
    assert {k: read.json[k] for k in order} == order and ISO.match(read.json["updated_at"])
    missing = api.simulate_get("/api/v1/orders/order_0000000000000000", headers=AUTH)
    assert error_of(missing) == (404, "NOT_FOUND_ERROR", "Order not found")


def test_public_order_needs_no_credentials_and_shows_only_public_fields(api):
    order = create_order(api, receipt="secret-receipt", notes={"internal": "x"})
    public = api.simulate_get(f"/api/v1/orders/{order['id']}/public")
    assert public.status_code == 200
    assert public.json == {
        "id": order["id"],
        "amount": 50000,
        "currency": "INR",
        "status": "created",
        "merchant_name": "Test Merchant",
    }
    assert error_of(api.simulate_get("/api/v1/orders/order_nope/public"))[0] == 404


def test_post_payment_answers_201_pending_at_once(api):
    order = create_order(api)
    result = pay_upi(api, order["id"])
    assert result.status_code == 201
    body = result.json
    assert re.fullmatch(r"pay_[A-Za-z0-9]{16}", body["id"])
    expected = {"order_id": order["id"], "amount": 50000, "currency": "INR", "method": "upi"}
    assert {k: body[k] for k in expected} == expected
    assert body["status"] == "pending" and body["vpa"] == "user@paytm"
    assert ISO.match(body["created_at"]) and "card_network" not in body


def test_public_payment_takes_the_merchant_from_the_order(ctx, api):
    order = create_order(api)
    result = pay(
        api,
        {"order_id": order["id"], "method": "upi", "vpa": "a@b"},
        headers={},
        path="/api/v1/payments/public",
    )
    assert result.status_code == 201, result.text
    read = api.simulate_get(f"/api/v1/payments/{result.json['id']}", headers=AUTH)
    assert read.status_code == 200 and read.json["order_id"] == order["id"]
    missing = pay(
        api,
        {"order_id": "order_nope", "method": "upi", "vpa": "a@b"},
        headers={},
        path="/api/v1/payments/public",
    )
    assert error_of(missing) == (404, "NOT_FOUND_ERROR", "Order not found")


def test_get_payment_is_the_full_payment(ctx, api):
    order = create_order(api)
    created = pay_card(api, order["id"]).json
    read = api.simulate_get(f"/api/v1/payments/{created['id']}", headers=AUTH).json
    for key in ("captured", "updated_at", "error_code", "error_description"):
        assert key in read
    assert read["captured"] is False and read["error_code"] is None
    assert (read["card_network"], read["card_last4"]) == ("visa", "1111")
    missing = api.simulate_get("/api/v1/payments/pay_0000000000000000", headers=AUTH)
    assert error_of(missing) == (404, "NOT_FOUND_ERROR", "Payment not found")


def test_public_payment_read_has_the_polling_fields_only(make_ctx, api):
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false")
    order = create_order(api)
    created = pay_upi(api, order["id"]).json
    payments.process(ctx, created["id"])
    public = api.simulate_get(f"/api/v1/payments/{created['id']}/public")
    assert public.status_code == 200
    assert {"id", "order_id", "amount", "currency", "method", "status"} <= set(public.json)
    assert public.json["status"] == "failed"
    assert public.json["error_code"] == "PAYMENT_FAILED"
    assert public.json["error_description"] == "Payment processing failed"
    assert "vpa" not in public.json and "captured" not in public.json


# -- capture ------------------------------------------------------------------------------------


def _settled(ctx, api, vpa="success@test", amount=50000) -> dict:
    order = create_order(api, amount=amount)
    payment = pay_upi(api, order["id"], vpa).json
    payments.process(ctx, payment["id"])
    return payment


def _capture(api, payment_id, body=None):
    return api.simulate_post(f"/api/v1/payments/{payment_id}/capture", json=body, headers=AUTH)


def test_capture_marks_a_successful_payment_captured_and_emits_payment_captured(ctx, api):
    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    payment = _settled(ctx, api)
    result = _capture(api, payment["id"], {"amount": 50000})
    assert result.status_code == 200, result.text
    assert result.json["captured"] is True and result.json["status"] == "success"
    read = api.simulate_get(f"/api/v1/payments/{payment['id']}", headers=AUTH).json
    assert read["captured"] is True
    with ctx.db.connection() as conn:
        events = [
            r["event"]
            for r in conn.execute(
                "SELECT event FROM webhook_logs WHERE resource_id = %s ORDER BY created_at",
                (payment["id"],),
            )
        ]
    assert events.count("payment.captured") == 1


def test_capture_without_amount_takes_the_whole_payment_and_less_is_allowed(ctx, api):
    whole = _settled(ctx, api)
    assert _capture(api, whole["id"]).json["captured"] is True
    part = _settled(ctx, api)
    assert _capture(api, part["id"], {"amount": 100}).json["captured"] is True


def test_capture_rules(make_ctx, api):
    ctx = make_ctx()
    pending = pay_upi(api, create_order(api)["id"]).json
    failed = _settled(ctx, api, vpa="failure@test")
    payment = _settled(ctx, api)
    not_capturable = (400, "BAD_REQUEST_ERROR", "Payment not in capturable state")
    assert error_of(_capture(api, pending["id"])) == not_capturable
    assert error_of(_capture(api, failed["id"])) == not_capturable
    too_much = _capture(api, payment["id"], {"amount": 50001})
    assert error_of(too_much) == (400, "BAD_REQUEST_ERROR", "Capture amount exceeds payment amount")
    for bad in ({"amount": 0}, {"amount": "50000"}, {"amount": 500.0}, {"extra": 1}, [1]):
        assert error_of(_capture(api, payment["id"], bad))[:2] == (400, "BAD_REQUEST_ERROR")
    assert _capture(api, payment["id"]).status_code == 200
    assert error_of(_capture(api, payment["id"])) == (
        400,
        "BAD_REQUEST_ERROR",
        "Payment already captured",
    )
    missing = _capture(api, "pay_0000000000000000")
    assert error_of(missing) == (404, "NOT_FOUND_ERROR", "Payment not found")


def test_concurrent_captures_capture_once(ctx, api):
    from concurrent.futures import ThreadPoolExecutor

    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    payment = _settled(ctx, api)
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: _capture(api, payment["id"]).status_code, range(8)))
    assert statuses == [200] + [400] * 7
    with ctx.db.connection() as conn:
        captured = conn.execute(
            "SELECT count(*) AS n FROM webhook_logs WHERE event = 'payment.captured'"
        ).fetchone()["n"]
    assert captured == 1


# -- listing --------------------------------------------------------------------------------


def _list(api, **params):
    return api.simulate_get("/api/v1/payments", params=params, headers=AUTH)


def test_listing_is_newest_first_with_total_limit_offset(api):
    order = create_order(api)
    ids = [pay_upi(api, order["id"]).json["id"] for _ in range(12)]
    page = _list(api).json
    assert set(page) == {"data", "total", "limit", "offset"}
    assert (page["total"], page["limit"], page["offset"]) == (12, 10, 0)
    assert [p["id"] for p in page["data"]] == ids[::-1][:10]
    rest = _list(api, limit=5, offset=10).json
    assert [p["id"] for p in rest["data"]] == ids[::-1][10:]
    assert rest["total"] == 12 and (rest["limit"], rest["offset"]) == (5, 10)
    assert len(_list(api, limit=100).json["data"]) == 12


def test_listing_limits_are_bounded(api):
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"limit": "ten"},
        {"limit": "1_0"},
        {"limit": ""},
        {"offset": -1},
        {"offset": 10**12},
        {"status": "paid"},
        {"method": "cash"},
        {"from": "yesterday"},
        {"to": "9" * 70},
    ):
        assert error_of(_list(api, **params))[:2] == (400, "BAD_REQUEST_ERROR"), params


def test_listing_filters_by_status_method_order_and_created_range(ctx, api):
    first, second = create_order(api), create_order(api)
    upi = pay_upi(api, first["id"], "success@test").json
    payments.process(ctx, upi["id"])
    card_payment = pay_card(api, second["id"]).json

    def ids(**params):
        return {p["id"] for p in _list(api, **params).json["data"]}

    assert ids(status="success") == {upi["id"]}
    assert ids(status="pending") == {card_payment["id"]}
    assert ids(method="card") == {card_payment["id"]}
    assert ids(order_id=first["id"]) == {upi["id"]}
    assert ids(status="failed") == set()
    now = datetime.now(UTC)
    assert ids(**{"from": (now - timedelta(minutes=5)).isoformat()}) == {
        upi["id"],
        card_payment["id"],
    }
    assert ids(**{"from": str(int(time.time()) + 3600)}) == set()
    assert ids(to=(now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")) == set()
    assert ids(to="2999-01-01") == {upi["id"], card_payment["id"]}


def test_listing_shows_only_the_merchants_own_payments(api, other_merchant):
    from tests.fixtures import OTHER_AUTH

    theirs = create_order(api, headers=OTHER_AUTH)
    pay_upi(api, theirs["id"], headers=OTHER_AUTH)
    assert _list(api).json["total"] == 0
    assert _list(api, order_id=theirs["id"]).json["data"] == []


# -- the test merchant, magic values, job status ------------------------------------------------


def test_test_merchant_is_public_and_seeded(api):
    assert api.simulate_get("/api/v1/test/merchant").json == {
        "id": TEST_MERCHANT_ID,
        "email": "test@example.com",
        "api_key": "key_test_abc123",
        "seeded": True,
    }


def test_magic_values_force_the_outcome(make_ctx, api):
    for success_env in ("true", "false"):
        ctx = make_ctx(TEST_PAYMENT_SUCCESS=success_env)
        outcomes = {}
        for label, body in {
            "success@test": {"method": "upi", "vpa": "success@test"},
            "failure@test": {"method": "upi", "vpa": "failure@test"},
            "4242": {"method": "card", "card": card("4242 4242 4242 4242")},
            "0002": {"method": "card", "card": card("4000 0000 0000 0002")},
        }.items():
            payment = pay(api, {"order_id": create_order(api)["id"], **body}).json
            outcomes[label] = payments.process(ctx, payment["id"])
        assert outcomes == {
            "success@test": "success",
            "failure@test": "failed",
            "4242": "success",
            "0002": "failed",
        }, success_env


def test_job_status_counts_pending_payments(api):
    order = create_order(api)
    pay_upi(api, order["id"])
    status = api.simulate_get("/api/v1/test/jobs/status").json
    assert status["pending"] >= 1 and status["worker_status"] == "stopped"
    assert set(status) == {"pending", "processing", "completed", "failed", "worker_status"}


def test_magic_values_are_documented_as_the_processor_defines_them():
    from pathlib import Path

    from paygate.builtin.processors import testmode

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = text.split("## Test-mode magic values", 1)[1].split("\n## ", 1)[0]
    for value in (
        testmode.ALWAYS_SUCCEED_VPA,
        testmode.ALWAYS_FAIL_VPA,
        testmode.FAILING_REFUND_REASON,
        "4242 4242 4242 4242",
        "4000 0000 0000 0002",
    ):
        assert f"`{value}`" in section or value in section, value
    assert testmode.ALWAYS_SUCCEED_CARD == ("visa", "4242")
    assert testmode.ALWAYS_DECLINE_CARD == ("visa", "0002")
