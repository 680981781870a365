"""One idempotent-create flow for every edge: a key is compared by the operation's name, its
target and the body, never by a URL, so the dashboard's refund form and the API's refund POST
are the same operation under one key."""

from __future__ import annotations

from paygate.services import idempotency
from paygate.web.dashboard.app import create_app
from tests.api.helpers import count, error_of
from tests.dashboard_client import DashboardClient
from tests.factories import service_payment as pay
from tests.fixtures import AUTH


def test_the_fingerprint_is_the_scope_the_target_and_the_parsed_body(ctx):
    def fingerprint(*args):
        return idempotency.fingerprint(ctx, *args)

    body = {"amount": 500, "reason": "damaged"}
    same = fingerprint(idempotency.REFUND_CREATE, body, "pay_a")
    assert fingerprint(idempotency.REFUND_CREATE, dict(reversed(body.items())), "pay_a") == same
    assert fingerprint(idempotency.REFUND_CREATE, body, "pay_b") != same
    assert fingerprint(idempotency.ORDER_CREATE, body) != fingerprint(
        idempotency.PAYMENT_CREATE, body
    )
    assert fingerprint(idempotency.REFUND_CREATE, {**body, "amount": 501}, "pay_a") != same
    # The target cannot bleed into the scope's name or the body.
    assert fingerprint("a", {}, "b") != fingerprint("ab", {}, None)


def test_without_a_key_run_simply_creates(ctx):
    made = []
    answer = idempotency.run(
        ctx, "m", idempotency.ORDER_CREATE, None, {}, lambda token: made.append(token) or {"id": 1}
    )
    assert made == [None]
    assert (answer.status, answer.body, answer.replayed, answer.view) == (
        201,
        b'{"id":1}',
        False,
        {"id": 1},
    )


def test_a_dashboard_refund_and_an_api_refund_under_one_key_are_one_refund(ctx, api, test_merchant):
    payment = pay(ctx, test_merchant, 50000)
    detail = f"/dashboard/transactions/{payment['id']}"
    client = DashboardClient(create_app(ctx))
    client.login()
    client.get(detail)
    form = {"amount": "150.50", "reason": "damaged", "idempotency_key": "shared-refund"}
    assert client.post(detail + "/refunds", form).status_code == 303
    headers = {**AUTH, "Idempotency-Key": "shared-refund"}
    path = f"/api/v1/payments/{payment['id']}/refunds"
    replay = api.simulate_post(path, json={"reason": "damaged", "amount": 15050}, headers=headers)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json["amount"] == 15050 and replay.json["reason"] == "damaged"
    assert count(ctx, "refunds") == 1
    # The same key for another amount, or for another operation, is a different request.
    other = api.simulate_post(path, json={"amount": 100, "reason": "damaged"}, headers=headers)
    assert error_of(other)[:2] == (422, "BAD_REQUEST_ERROR")
    order = api.simulate_post("/api/v1/orders", json={"amount": 500}, headers=headers)
    assert error_of(order)[:2] == (422, "BAD_REQUEST_ERROR")
    assert count(ctx, "refunds") == 1 and count(ctx, "orders") == 1  # the paid order only


def test_a_refund_key_reused_on_another_payment_is_refused(ctx, api, test_merchant):
    first, second = pay(ctx, test_merchant, 50000), pay(ctx, test_merchant, 50000)
    headers = {**AUTH, "Idempotency-Key": "one-refund"}
    body = {"amount": 1000}
    made = api.simulate_post(f"/api/v1/payments/{first['id']}/refunds", json=body, headers=headers)
    assert made.status_code == 201
    elsewhere = api.simulate_post(
        f"/api/v1/payments/{second['id']}/refunds", json=body, headers=headers
    )
    assert error_of(elsewhere) == (
        422,
        "BAD_REQUEST_ERROR",
        "Idempotency-Key reused with different parameters",
    )
    assert count(ctx, "refunds") == 1
