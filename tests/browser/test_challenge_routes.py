"""The buyer's detour in-process (falcon.testing, real PostgreSQL and Redis): the test
processor's 3-D Secure challenge page and its forms, the return URL, the checkout page that
follows the returning payment, and the methods the merchant's processor takes. The browser
tests (test_three_d_secure.py) walk the same pages in Chromium."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import falcon.testing
import pytest

from paygate.services import merchants, payments
from paygate.testing import register_plugin
from paygate.types import PaymentStatus
from paygate.web.checkout.app import create_app
from tests.factories import service_order
from tests.fixtures import TEST_MERCHANT_ID
from tests.plugins.helpers import ProvidesProcessors, ScriptedBank

CHALLENGE_CARD = {
    "number": "4000000000003220",
    "expiry_month": "12",
    "expiry_year": "2035",
    "cvv": "123",
    "holder_name": "Asha Rao",
}


@pytest.fixture
def client(ctx) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ctx))


def buyer_payment(client, order_id: str, card: dict | None = None) -> dict:
    """A payment made on the checkout's public endpoint, as the page makes it."""
    body = {"order_id": order_id, "method": "card", "card": card or CHALLENGE_CARD}
    answer = client.simulate_post(
        "/api/v1/payments/public", json=body, headers={"Idempotency-Key": f"chk_{order_id}"}
    )
    assert answer.status_code == 201, answer.text
    return answer.json


@pytest.fixture
def challenged(ctx, client, test_merchant):
    """A 3-D Secure payment the worker has charged: pending, with its next_action."""
    order = service_order(ctx, test_merchant)
    payment = buyer_payment(client, order["id"])
    assert payments.process(ctx, payment["id"]) == "deferred"
    return payment


def form_token(html: str) -> str:
    tokens = set(re.findall(r'name="token" value="([0-9a-f]+)"', html))
    assert len(tokens) == 1
    return tokens.pop()


def answer(client, payment_id: str, result: str, token: str):
    return client.simulate_post(
        f"/checkout/challenge/{payment_id}",
        body=f"answer={result}&token={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_the_public_payment_shows_the_challenge_as_next_action(client, challenged):
    public = client.simulate_get(f"/api/v1/payments/{challenged['id']}/public").json
    assert public["status"] == "pending"
    assert public["next_action"] == {
        "type": "redirect",
        "url": f"http://localhost:3001/checkout/challenge/{challenged['id']}",
    }


def test_the_challenge_page_shows_merchant_amount_card_and_both_buttons(client, challenged):
    page = client.simulate_get(f"/checkout/challenge/{challenged['id']}")
    assert page.status_code == 200
    assert "no-store" in page.headers["cache-control"]
    assert "frame-ancestors 'self' * file:" in page.headers["content-security-policy"]
    assert 'data-test-id="challenge-merchant">Test Merchant<' in page.text
    assert 'data-test-id="challenge-amount">₹500.00<' in page.text
    assert "VISA •••• 3220" in page.text
    assert 'data-test-id="challenge-approve"' in page.text
    assert 'data-test-id="challenge-deny"' in page.text
    assert "4000000000003220" not in page.text and "<script>" not in page.text
    form_token(page.text)


@pytest.mark.parametrize(
    "result, status, code",
    [
        ("approve", PaymentStatus.SUCCESS, None),
        ("deny", PaymentStatus.FAILED, "AUTHENTICATION_FAILED"),
    ],
)
def test_an_answer_settles_the_payment_and_returns_the_buyer(
    ctx, client, challenged, result, status, code
):
    page = client.simulate_get(f"/checkout/challenge/{challenged['id']}")
    posted = answer(client, challenged["id"], result, form_token(page.text))
    assert posted.status_code == 303
    assert posted.headers["location"].endswith(f"/checkout/return/{challenged['id']}")
    settled = payments.get(ctx, None, challenged["id"])
    assert (settled.status, settled.error_code) == (status, code)
    public = client.simulate_get(f"/api/v1/payments/{challenged['id']}/public").json
    assert "next_action" not in public

    back = client.simulate_get(f"/checkout/return/{challenged['id']}")
    assert back.status_code == 303
    target = urlsplit(back.headers["location"])
    assert target.path == "/checkout"
    assert parse_qs(target.query) == {
        "order_id": [challenged["order_id"]],
        "payment_id": [challenged["id"]],
    }
    # The order may be paid now: the page still shows, following the payment to its outcome.
    shown = client.simulate_get("/checkout", query_string=target.query)
    assert shown.status_code == 200
    assert f'data-payment-id="{challenged["id"]}"' in shown.text

    # The challenge is over: its page and its forms are gone.
    again = client.simulate_get(f"/checkout/challenge/{challenged['id']}")
    assert again.status_code == 404 and 'data-test-id="notice-title"' in again.text
    late = answer(client, challenged["id"], "approve", form_token(page.text))
    assert late.status_code == 404
    assert payments.get(ctx, None, challenged["id"]).status == status


def test_a_forged_answer_changes_nothing(ctx, client, challenged):
    for token in ("0" * 64, ""):
        refused = answer(client, challenged["id"], "approve", token)
        assert refused.status_code == 404
    page = client.simulate_get(f"/checkout/challenge/{challenged['id']}")
    refused = answer(client, challenged["id"], "maybe", form_token(page.text))
    assert refused.status_code == 404
    json_post = client.simulate_post(
        f"/checkout/challenge/{challenged['id']}",
        json={"answer": "approve", "token": form_token(page.text)},
    )
    assert json_post.status_code == 404
    assert payments.get(ctx, None, challenged["id"]).status == PaymentStatus.PENDING


def test_payments_without_a_challenge_get_the_notice(ctx, client, test_merchant):
    order = service_order(ctx, test_merchant)
    plain = buyer_payment(client, order["id"], {**CHALLENGE_CARD, "number": "4242424242424242"})
    for payment_id in (plain["id"], "pay_missing000000000", "pay_" + "x" * 80):
        page = client.simulate_get(f"/checkout/challenge/{payment_id}")
        assert page.status_code == 404
        assert 'data-test-id="notice-title">Nothing to verify<' in page.text


def test_return_for_an_unknown_payment_is_the_not_found_page(client):
    page = client.simulate_get("/checkout/return/pay_missing000000000")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]


def test_a_paid_order_with_another_orders_payment_is_still_the_paid_notice(
    ctx, client, test_merchant, challenged
):
    order = service_order(ctx, test_merchant)
    other = buyer_payment(client, order["id"], {**CHALLENGE_CARD, "number": "4242424242424242"})
    payments.process(ctx, other["id"])
    shown = client.simulate_get(
        "/checkout", params={"order_id": order["id"], "payment_id": challenged["id"]}
    )
    assert shown.status_code == 409 and "data-payment-id" not in shown.text


def test_the_checkout_offers_only_the_methods_of_the_merchants_processor(ctx, client):
    merchant = merchants.get(ctx, TEST_MERCHANT_ID)
    order = service_order(ctx, merchant)
    page = client.simulate_get("/checkout", params={"order_id": order["id"]})
    assert 'data-test-id="method-upi"' in page.text and 'data-test-id="method-card"' in page.text
    bank = ScriptedBank(name="upionly", methods=frozenset({"upi"}))
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, bank.name)
        try:
            page = client.simulate_get("/checkout", params={"order_id": order["id"]})
        finally:
            merchants.set_processor(ctx, TEST_MERCHANT_ID, "test")
    assert 'data-test-id="method-upi"' in page.text
    assert 'data-test-id="method-card"' not in page.text
    assert 'data-methods="upi"' in page.text


def test_the_test_processors_callbacks_through_the_api(ctx, api, challenged):
    """The callback endpoint with the test processor's signed bodies: a forged one is refused
    and changes nothing; the signed approval settles the payment once; a late denial (and a
    replay) change nothing."""
    processor = ctx.plugins.processor("test")
    path = "/api/v1/processors/test/callbacks"

    def send(request):
        return api.simulate_post(path, body=request.body, headers=dict(request.headers))

    approval = processor.challenge_callback(challenged["id"], "approve")
    forged = type(approval)(approval.body, {"paygate-test-signature": "0" * 64})
    refused = send(forged)
    assert refused.status_code == 400
    assert payments.get(ctx, None, challenged["id"]).status == PaymentStatus.PENDING

    applied = send(approval)
    assert (applied.status_code, applied.json) == (200, {"received": True, "applied": True})
    assert send(approval).json == {"received": True, "applied": False}  # a replay
    denial = send(processor.challenge_callback(challenged["id"], "deny"))
    assert denial.json == {"received": True, "applied": False}  # a final outcome never flips
    settled = payments.get(ctx, None, challenged["id"])
    assert (settled.status, settled.error_code) == (PaymentStatus.SUCCESS, None)


def test_an_abandoned_challenge_fails_with_authentication_timeout(make_ctx):
    ctx = make_ctx(PAYGATE_TESTMODE_CHALLENGE_SECONDS="1")
    client = falcon.testing.TestClient(create_app(ctx))
    order = service_order(ctx, merchants.get(ctx, TEST_MERCHANT_ID))
    payment = buyer_payment(client, order["id"])
    assert payments.process(ctx, payment["id"]) == "deferred"
    assert client.simulate_get(f"/checkout/challenge/{payment['id']}").status_code == 200
    time.sleep(1.2)  # the worker asks again when the challenge times out (its retry_after)
    assert client.simulate_get(f"/checkout/challenge/{payment['id']}").status_code == 404
    assert payments.process(ctx, payment["id"]) == "failed"
    failed = payments.get(ctx, None, payment["id"])
    assert (failed.status, failed.error_code) == (PaymentStatus.FAILED, "AUTHENTICATION_TIMEOUT")
    assert failed.next_action is None


def test_a_buyer_back_without_answering_makes_the_payment_due_and_sees_it_pending(
    ctx, client, challenged
):
    def due_in() -> float:
        with ctx.db.connection() as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM next_check_at - now()) AS s FROM payments WHERE id = %s",
                (challenged["id"],),
            ).fetchone()
        return float(row["s"])

    assert due_in() > 500  # the worker would ask again when the challenge times out
    back = client.simulate_get(f"/checkout/return/{challenged['id']}")
    assert back.status_code == 303
    assert due_in() <= 0  # asked at once
    shown = client.simulate_get("/checkout", query_string=urlsplit(back.headers["location"]).query)
    assert shown.status_code == 200 and f'data-payment-id="{challenged["id"]}"' in shown.text
    # The processor still waits for the buyer: the page will send them to the challenge again.
    assert payments.process(ctx, challenged["id"]) == "deferred"
    public = client.simulate_get(f"/api/v1/payments/{challenged['id']}/public").json
    assert public["next_action"]["type"] == "redirect"
