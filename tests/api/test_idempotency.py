"""Idempotency-Key: the compatible replay plus Stripe's 422/409, scoped to (merchant, key),
enforced by the database's primary key rather than a check-then-insert."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from paygate.config import TEST_MERCHANT_ID
from paygate.services import idempotency
from tests.api.helpers import count, create_order, error_of
from tests.fixtures import AUTH, OTHER_AUTH, run_queue, wait_for


def jobs(kind: str) -> list:
    """The tasks of ``kind`` waiting in this run's queue."""
    return [task for task in run_queue().huey.pending() if task.name.endswith(kind)]


def post(api, path, body, key, headers=None):
    return api.simulate_post(
        path, json=body, headers={**(AUTH if headers is None else headers), "Idempotency-Key": key}
    )


def test_a_repeat_replays_the_first_answer_byte_for_byte_and_creates_nothing(ctx, api):
    order = create_order(api)
    body = {"order_id": order["id"], "method": "upi", "vpa": "user@paytm"}
    first = post(api, "/api/v1/payments", body, "key-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = post(api, "/api/v1/payments", {**body}, "key-1")
    reordered = post(api, "/api/v1/payments", dict(reversed(list(body.items()))), "key-1")
    for replay in (again, reordered):
        assert replay.status_code == 201
        assert replay.content == first.content
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.headers["Request-Id"] != first.headers["Request-Id"]
    assert count(ctx, "payments") == 1
    assert len(jobs("process_payment")) == 1


def test_ten_concurrent_identical_requests_create_one_payment_and_one_job(ctx, api):
    order = create_order(api)
    body = {"order_id": order["id"], "method": "upi", "vpa": "user@paytm"}
    start = threading.Barrier(10)

    def attempt(_):
        start.wait()
        return post(api, "/api/v1/payments", body, "concurrent-key")

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(attempt, range(10)))
    created = [
        a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers
    ]
    replays = [a for a in answers if a.headers.get("Idempotent-Replayed") == "true"]
    conflicts = [a for a in answers if a.status_code == 409]
    assert len(created) == 1, [(a.status_code, a.text) for a in answers]
    assert len(created) + len(replays) + len(conflicts) == 10
    assert all(r.status_code == 201 and r.content == created[0].content for r in replays)
    assert all(error_of(c)[1] == "BAD_REQUEST_ERROR" for c in conflicts)
    assert count(ctx, "payments") == 1
    assert len(jobs("process_payment")) == 1
    # The same key with a different body is refused, and still nothing new is made.
    different = post(api, "/api/v1/payments", {**body, "vpa": "other@paytm"}, "concurrent-key")
    assert error_of(different) == (
        422,
        "BAD_REQUEST_ERROR",
        "Idempotency-Key reused with different parameters",
    )
    assert count(ctx, "payments") == 1 and len(jobs("process_payment")) == 1


def test_a_repeat_while_the_first_is_in_flight_is_409(ctx, api):
    order = create_order(api)
    body = {"order_id": order["id"], "method": "upi", "vpa": "a@b"}
    # Claim the key exactly as a request that has not finished yet holds it.
    fingerprint = idempotency.fingerprint(ctx, idempotency.PAYMENT_CREATE, body)
    token = idempotency.begin(ctx, TEST_MERCHANT_ID, "in-flight", fingerprint)
    assert isinstance(token, idempotency.Token)
    result = post(api, "/api/v1/payments", body, "in-flight")
    assert error_of(result)[:2] == (409, "BAD_REQUEST_ERROR")
    assert count(ctx, "payments") == 0
    idempotency.abandon(ctx, token)
    assert post(api, "/api/v1/payments", body, "in-flight").status_code == 201


def test_errors_are_not_stored_and_the_key_can_be_used_again(ctx, api):
    order = create_order(api)
    bad = {"order_id": order["id"], "method": "upi", "vpa": "invalid-vpa"}
    assert error_of(post(api, "/api/v1/payments", bad, "retry-me"))[:2] == (400, "INVALID_VPA")
    good = {**bad, "vpa": "user@paytm"}
    assert post(api, "/api/v1/payments", good, "retry-me").status_code == 201
    assert count(ctx, "payments") == 1


def test_keys_are_scoped_per_merchant(ctx, api, other_merchant):
    mine = post(api, "/api/v1/orders", {"amount": 500}, "shared-key")
    theirs = post(api, "/api/v1/orders", {"amount": 500}, "shared-key", OTHER_AUTH)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json["id"] != theirs.json["id"] and "Idempotent-Replayed" not in theirs.headers
    assert count(ctx, "orders") == 2


def test_keys_are_kept_24_hours(ctx, api):
    first = post(api, "/api/v1/orders", {"amount": 500}, "day-old")

    def age(interval: str) -> None:
        """Let ``interval`` pass for the stored key."""
        with ctx.db.connection() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET created_at = created_at - %s::interval,"
                " expires_at = expires_at - %s::interval",
                (interval, interval),
            )

    with ctx.db.connection() as conn:
        row = conn.execute("SELECT expires_at - created_at AS ttl FROM idempotency_keys").fetchone()
    assert row["ttl"].total_seconds() == pytest.approx(24 * 3600, abs=60)
    age("23 hours 59 minutes")
    assert post(api, "/api/v1/orders", {"amount": 500}, "day-old").content == first.content
    age("2 minutes")
    fresh = post(api, "/api/v1/orders", {"amount": 500}, "day-old")
    assert fresh.status_code == 201 and fresh.json["id"] != first.json["id"]
    assert "Idempotent-Replayed" not in fresh.headers
    assert count(ctx, "orders") == 2


def test_every_creating_post_honours_the_key(ctx, api):
    from paygate.services import payments

    order = post(api, "/api/v1/orders", {"amount": 5000}, "order-key")
    assert post(api, "/api/v1/orders", {"amount": 5000}, "order-key").content == order.content
    body = {"order_id": order.json["id"], "method": "upi", "vpa": "success@test"}
    public = post(api, "/api/v1/payments/public", body, "public-key", headers={})
    again = post(api, "/api/v1/payments/public", body, "public-key", headers={})
    assert public.status_code == 201 and again.content == public.content
    assert again.headers["Idempotent-Replayed"] == "true"
    payments.process(ctx, public.json["id"])
    refund_path = f"/api/v1/payments/{public.json['id']}/refunds"
    refund = post(api, refund_path, {"amount": 100}, "refund-key")
    assert refund.status_code == 201, refund.text
    assert post(api, refund_path, {"amount": 100}, "refund-key").content == refund.content
    assert error_of(post(api, refund_path, {"amount": 200}, "refund-key"))[0] == 422
    assert (count(ctx, "orders"), count(ctx, "payments"), count(ctx, "refunds")) == (1, 1, 1)


def test_the_public_endpoint_scopes_keys_to_the_orders_merchant(ctx, api):
    # The same key through the private and the public endpoint: different paths, so the second
    # is a different request (422), not a replay of the first.
    order = create_order(api)
    body = {"order_id": order["id"], "method": "upi", "vpa": "a@b"}
    assert post(api, "/api/v1/payments", body, "k").status_code == 201
    assert error_of(post(api, "/api/v1/payments/public", body, "k", headers={}))[0] == 422


def test_the_database_refuses_a_second_row_for_one_merchant_and_key(ctx):
    with ctx.db.connection() as conn:
        conn.execute(
            "INSERT INTO idempotency_keys (merchant_id, key, request_hash) VALUES (%s, 'k', 'h')",
            (TEST_MERCHANT_ID,),
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO idempotency_keys (merchant_id, key, request_hash)"
                " VALUES (%s, 'k', 'other')",
                (TEST_MERCHANT_ID,),
            )


@pytest.mark.e2e
def test_concurrent_http_requests_to_a_real_api_create_one_payment(gateway_factory, ctx):
    gateway = gateway_factory()
    gateway.start_api(workers=2, threads=8)
    order = gateway.api_call("POST", "/api/v1/orders", json={"amount": 5000}).json()
    body = {"order_id": order["id"], "method": "upi", "vpa": "user@paytm"}
    key = str(uuid.uuid4())
    start = threading.Barrier(10)

    def attempt(_):
        start.wait()
        return gateway.api_call(
            "POST", "/api/v1/payments", json=body, headers={"Idempotency-Key": key}
        )

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(attempt, range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, statuses
    fresh = [a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1
    assert all(a.content == fresh[0].content for a in answers if a.status_code == 201)
    assert count(ctx, "payments") == 1
    wait_for(lambda: len(jobs("process_payment")) == 1, timeout=5)
