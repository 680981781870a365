"""Issue 15, abuse limits of the public payment endpoint: card testing (per order, client and
merchant windows, 429 + Retry-After), a buyer's second attempt while one is pending, and the
automatic refund of a checkout payment that succeeds on an order already paid.

Real PostgreSQL and Redis; the payment and refund jobs run by calling the worker's service
functions, as tests/test_processing.py does.
"""

from __future__ import annotations

import ipaddress
import threading
from concurrent.futures import ThreadPoolExecutor

import falcon.testing
import pytest

from paygate import events
from paygate.api.app import create_app
from paygate.errors import RateLimited
from paygate.services import limits, payments, refunds
from tests.fixtures import AUTH, set_webhook_url

PUBLIC = "/api/v1/payments/public"
CARD = {
    "number": "4111 1111 1111 1111",
    "expiry_month": "12",
    "expiry_year": "39",
    "cvv": "123",
    "holder_name": "Card Tester",
}


def client_for(ctx) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ctx), headers={"Content-Type": "application/json"})


def new_order(api, amount: int = 50000) -> str:
    created = api.simulate_post("/api/v1/orders", json={"amount": amount}, headers=AUTH)
    assert created.status_code == 201, created.text
    return created.json["id"]


def card_attempt(api, order_id: str, *, client: str = "198.51.100.7", headers=None):
    return api.simulate_post(
        PUBLIC,
        json={"order_id": order_id, "method": "card", "card": CARD},
        remote_addr=client,
        headers=headers,
    )


def assert_rate_limited(result) -> int:
    assert result.status_code == 429, result.text
    assert result.json["error"]["code"] == "RATE_LIMITED"
    assert result.json["error"]["description"]
    retry_after = int(result.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


# -- 1. card testing ---------------------------------------------------------------------------


def test_sixty_card_attempts_on_one_order_from_one_client_get_429_after_a_few(make_ctx):
    """Done-when 3: a card tester's sixty declined attempts in a minute; the first few are
    processed (each declined before the next), the rest answer 429 with Retry-After."""
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false")
    api = client_for(ctx)
    order_id = new_order(api)
    statuses, retry_afters = [], []
    for _ in range(60):
        result = card_attempt(api, order_id)
        statuses.append(result.status_code)
        if result.status_code == 201:
            assert payments.process(ctx, result.json["id"]) == "failed"
        else:
            retry_afters.append(assert_rate_limited(result))
    allowed = ctx.settings.limit_public_order[0]
    assert allowed == 5  # the default: a buyer may mistype twice, a tester gets five tries
    assert statuses == [201] * allowed + [429] * (60 - allowed)
    assert all(1 <= seconds <= 600 for seconds in retry_afters)
    with ctx.db.connection() as conn:
        count = conn.execute("SELECT count(*) AS n FROM payments").fetchone()["n"]
    assert count == allowed  # refused attempts create nothing


def test_one_client_is_limited_across_orders_and_other_clients_are_not(make_ctx):
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false")
    api = client_for(ctx)
    per_ip = ctx.settings.limit_public_ip[0]
    orders = [new_order(api) for _ in range(per_ip + 1)]
    answers = [card_attempt(api, order_id).status_code for order_id in orders]
    assert answers == [201] * per_ip + [429]
    # Another client may still pay the very order the first one was refused on.
    assert card_attempt(api, orders[-1], client="203.0.113.9").status_code == 201


def test_the_merchant_cap_stops_a_distributed_run(make_ctx):
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false", PAYGATE_LIMIT_PUBLIC_MERCHANT="3/60")
    api = client_for(ctx)
    answers = [
        card_attempt(api, new_order(api), client=f"192.0.2.{i}").status_code for i in range(4)
    ]
    assert answers == [201, 201, 201, 429]


def test_an_unknown_order_is_still_counted_against_the_client(make_ctx):
    ctx = make_ctx(PAYGATE_LIMIT_PUBLIC_IP="2/60")
    api = client_for(ctx)
    missing = "order_AAAAAAAAAAAAAAAA"
    assert [card_attempt(api, missing).status_code for _ in range(3)] == [404, 404, 429]


def test_parallel_public_creates_never_pass_the_per_order_limit(make_ctx):
    """24 attempts at once on one order: exactly the limit get past the limiter (the rest 429),
    and of those exactly one becomes a pending payment (the others 409: one is pending)."""
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false")
    api = client_for(ctx)
    order_id = new_order(api)
    barrier = threading.Barrier(24)

    def attempt(i: int) -> int:
        barrier.wait()
        return card_attempt(api, order_id, client=f"198.51.100.{i}").status_code

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(attempt, range(24)))
    limit = ctx.settings.limit_public_order[0]
    assert answers.count(429) == 24 - limit
    assert answers.count(201) == 1 and answers.count(409) == limit - 1


def test_the_limiter_counts_atomically_under_parallel_hits(ctx):
    bucket = limits.bucket(ctx, "test", "one bucket", (10, 60))
    barrier = threading.Barrier(24)

    def hit(_: int) -> bool:
        barrier.wait()
        try:
            limits.hit(ctx, [bucket])
        except RateLimited:
            return False
        return True

    with ThreadPoolExecutor(24) as pool:
        admitted = sum(pool.map(hit, range(24)))
    assert admitted == 10


def test_the_limits_are_settings():
    from tests.fixtures import make_settings

    settings = make_settings(PAYGATE_LIMIT_PUBLIC_ORDER="3/120", PAYGATE_LIMIT_PUBLIC_IP="0/60")
    assert settings.limit_public_order == (3, 120) and settings.limit_public_ip == (0, 60)
    with pytest.raises(ValueError, match="PAYGATE_LIMIT_PUBLIC_ORDER"):
        make_settings(PAYGATE_LIMIT_PUBLIC_ORDER="five")


def test_a_limit_of_zero_is_off(make_ctx):
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false", PAYGATE_LIMIT_PUBLIC_ORDER="0/600")
    api = client_for(ctx)
    order_id = new_order(api)
    for _ in range(7):
        result = card_attempt(api, order_id)
        assert result.status_code == 201
        payments.process(ctx, result.json["id"])


# -- the client address --------------------------------------------------------------------


def test_the_client_is_the_socket_peer_unless_a_trusted_proxy_says_otherwise(make_ctx):
    plain = make_ctx()
    spoof = "1.2.3.4, 5.6.7.8"
    assert limits.client_ip(plain, "198.51.100.7", spoof) == "198.51.100.7"
    proxied = make_ctx(PAYGATE_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1")
    # The right-most hop that is not a trusted proxy; what the client wrote further left is not
    # believed.
    assert limits.client_ip(proxied, "10.1.2.3", "6.6.6.6, 203.0.113.5, 10.9.9.9") == (
        "203.0.113.5"
    )
    assert limits.client_ip(proxied, "10.1.2.3", None) == "10.1.2.3"
    # A peer that is not a trusted proxy: its header is ignored.
    assert limits.client_ip(proxied, "203.0.113.5", "6.6.6.6") == "203.0.113.5"
    # IPv6 clients count per /64; mapped IPv4 as IPv4.
    v6 = limits.client_ip(plain, "2001:db8:1:2:aaaa::1", None)
    assert ipaddress.ip_network(v6) == ipaddress.ip_network("2001:db8:1:2::/64")
    assert limits.client_ip(plain, "::ffff:198.51.100.7", None) == "198.51.100.7"
    with pytest.raises(ValueError, match="PAYGATE_TRUSTED_PROXIES"):
        make_ctx(PAYGATE_TRUSTED_PROXIES="not an address")


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_window(make_ctx):
    ctx = make_ctx(
        TEST_PAYMENT_SUCCESS="false",
        PAYGATE_TRUSTED_PROXIES="127.0.0.1",
        PAYGATE_LIMIT_PUBLIC_IP="1/60",
    )
    api = client_for(ctx)

    def via_proxy(order_id: str, client: str) -> int:
        forwarded = {"X-Forwarded-For": f"9.9.9.9, {client}"}  # the left part is a lie
        return card_attempt(api, order_id, client="127.0.0.1", headers=forwarded).status_code

    assert via_proxy(new_order(api), "203.0.113.1") == 201
    assert via_proxy(new_order(api), "203.0.113.1") == 429
    assert via_proxy(new_order(api), "203.0.113.2") == 201


def test_the_table_stores_neither_addresses_nor_order_ids(make_ctx):
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false")
    api = client_for(ctx)
    order_id = new_order(api)
    card_attempt(api, order_id, client="198.51.100.77")
    with ctx.db.connection() as conn:
        stored = " ".join(r["bucket"] for r in conn.execute("SELECT bucket FROM rate_limits"))
    assert stored and "198.51.100.77" not in stored and order_id not in stored


# -- 2. one pending attempt at a time ------------------------------------------------------------


def test_a_buyers_second_attempt_while_one_is_pending_is_refused(make_ctx):
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="false")
    api = client_for(ctx)
    order_id = new_order(api)
    # A pending payment of the merchant's own server is not the buyer's attempt.
    body = {"order_id": order_id, "method": "upi", "vpa": "user@paytm"}
    assert api.simulate_post("/api/v1/payments", json=body, headers=AUTH).status_code == 201
    first = card_attempt(api, order_id)
    assert first.status_code == 201 and first.json["status"] == "pending"
    second = card_attempt(api, order_id)
    assert second.status_code == 409
    assert second.json["error"]["description"] == (
        "A payment for this order is already being processed. "
        "Wait for its result before trying again."
    )
    assert second.json["error"]["field"] == "order_id"
    # A typo still gets its own message first.
    typo = api.simulate_post(
        PUBLIC, json={"order_id": order_id, "method": "upi", "vpa": "oops"}, remote_addr="192.0.2.1"
    )
    assert typo.status_code == 400 and typo.json["error"]["code"] == "INVALID_VPA"
    # The merchant's API keeps the contract: several payments per order.
    assert api.simulate_post("/api/v1/payments", json=body, headers=AUTH).status_code == 201
    # Once the buyer's payment is declined, the buyer may try again (when no payment is pending).
    assert payments.process(ctx, first.json["id"]) == "failed"
    with ctx.db.connection() as conn:
        conn.execute("UPDATE payments SET status = 'failed' WHERE order_id = %s", (order_id,))
    assert card_attempt(api, order_id).status_code == 201


# -- 3. a success on a paid order is refunded ----------------------------------------------------


def webhook_events(ctx, resource_id: str) -> list[str]:
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT event FROM webhook_logs WHERE resource_id = %s ORDER BY created_at",
            (resource_id,),
        ).fetchall()
    return [r["event"] for r in rows]


def test_a_checkout_payment_succeeding_on_a_paid_order_is_refunded_automatically(ctx, api):
    set_webhook_url(ctx, "http://127.0.0.1:9/hooks")
    order_id = new_order(api)
    buyer = card_attempt(api, order_id)  # the buyer's tab
    assert buyer.status_code == 201
    # Meanwhile the merchant's server charges the same order (the API allows it).
    body = {"order_id": order_id, "method": "upi", "vpa": "user@paytm"}
    merchant = api.simulate_post("/api/v1/payments", json=body, headers=AUTH)
    assert merchant.status_code == 201
    assert payments.process(ctx, merchant.json["id"]) == "success"  # pays the order
    assert payments.process(ctx, buyer.json["id"]) == "success"  # both succeeded...

    with ctx.db.connection() as conn:
        rows = conn.execute("SELECT id, payment_id, amount, reason, status FROM refunds").fetchall()
    assert len(rows) == 1  # ...and the later one is refunded in full, through the normal path
    refund = rows[0]
    assert refund["payment_id"] == buyer.json["id"] and refund["amount"] == 50000
    assert refund["reason"] == "duplicate payment for a paid order"
    assert refund["status"] == "pending"
    assert refunds.process(ctx, refund["id"]) == "processed"

    assert events.PAYMENT_SUCCESS in webhook_events(ctx, buyer.json["id"])
    assert webhook_events(ctx, refund["id"]) == [events.REFUND_CREATED, events.REFUND_PROCESSED]
    read = api.simulate_get(f"/api/v1/payments/{buyer.json['id']}", headers=AUTH).json
    assert read["status"] == "success"
    assert api.simulate_get(f"/api/v1/refunds/{refund['id']}", headers=AUTH).json["status"] == (
        "processed"
    )
    # The payment that paid the order first is left alone.
    assert webhook_events(ctx, merchant.json["id"])[-1] == events.PAYMENT_SUCCESS
    with ctx.db.connection() as conn:
        paid = conn.execute(
            "SELECT amount_refunded FROM payments WHERE id = %s", (merchant.json["id"],)
        ).fetchone()
    assert paid["amount_refunded"] == 0


def test_two_buyer_tabs_at_once_get_one_payment(make_ctx):
    """Two concurrent public payments on one order: the one-pending index lets only one in, so
    the buyer cannot be charged twice by two tabs (the other tab is told to wait)."""
    ctx = make_ctx(TEST_PAYMENT_SUCCESS="true")
    api = client_for(ctx)
    for _ in range(3):
        order_id = new_order(api)
        barrier = threading.Barrier(2)

        def tab(i: int, order_id=order_id, barrier=barrier):
            barrier.wait()
            return card_attempt(api, order_id, client=f"203.0.113.{i}")

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(tab, range(2)))
        assert sorted(a.status_code for a in answers) == [201, 409]
        created = next(a.json["id"] for a in answers if a.status_code == 201)
        assert payments.process(ctx, created) == "success"
        assert card_attempt(api, order_id).json["error"]["description"] == "Order already paid"


def test_settling_both_at_once_refunds_the_checkout_payment_unless_it_paid(ctx, api):
    """The buyer's and the merchant's payment settle concurrently: exactly one pays the order
    (the order row serializes them); the buyer's is refunded exactly when it did not."""
    for _ in range(4):
        order_id = new_order(api)
        buyer = card_attempt(api, order_id).json["id"]
        body = {"order_id": order_id, "method": "upi", "vpa": "user@paytm"}
        merchant = api.simulate_post("/api/v1/payments", json=body, headers=AUTH).json["id"]
        barrier = threading.Barrier(2)

        def settle(payment_id: str, barrier=barrier) -> str:
            barrier.wait()
            return payments.process(ctx, payment_id)

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(settle, [buyer, merchant])) == ["success", "success"]
        with ctx.db.connection() as conn:
            # The payer's settlement and the order's update share one transaction: the payment
            # last written by the transaction that wrote the order is the one that paid it (by
            # transaction id: two transactions begun together can share a now()).
            payer = conn.execute(
                """SELECT p.id FROM payments p JOIN orders o ON o.id = p.order_id
                    WHERE o.id = %s AND o.status = 'paid' AND p.xmin::text = o.xmin::text""",
                (order_id,),
            ).fetchall()
            refunded = {
                r["payment_id"]
                for r in conn.execute(
                    "SELECT payment_id FROM refunds WHERE payment_id IN (%s, %s)",
                    (buyer, merchant),
                )
            }
        assert len(payer) == 1
        assert refunded == ({buyer} if payer[0]["id"] == merchant else set())
