"""Processor API v2, core flow (issue 16): tokenization at creation, capabilities, buyer
actions (next_action), on a real database and queue with an in-test v2 processor."""

from __future__ import annotations

import logging
import time

import pytest

from paygate import ChargeResult, NotFound
from paygate.config import TEST_MERCHANT_ID
from paygate.services import merchants, payments
from paygate.testing import register_plugin
from tests.factories import create_order, get, post
from tests.fixtures import AUTH
from tests.plugins.helpers import ProvidesProcessors
from tests.v2bank import VaultBank

PAN = "4111 1111 1111 1111"
DIGITS = PAN.replace(" ", "")
CARD = {
    "method": "card",
    "card": {
        "number": PAN,
        "expiry_month": "12",
        "expiry_year": "35",
        "cvv": "987",
        "holder_name": "Asha Rao",
    },
}


@pytest.fixture
def bank(ctx):
    bank = VaultBank()
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, bank.name)
        yield bank
        bank.release_hang.set()


def counts(ctx) -> tuple[int, int]:
    with ctx.db.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM payments) AS p, (SELECT count(*) FROM webhook_logs) AS w"
        ).fetchone()
    return row["p"], row["w"]


def pay(api, order_id: str, method: dict = CARD, headers: dict | None = None):
    return post(api, "/api/v1/payments", {"order_id": order_id, **method}, headers)


def stored_token(ctx, payment_id: str) -> str | None:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT method_token FROM payments WHERE id = %s", (payment_id,)
        ).fetchone()["method_token"]


def everything_at_rest(ctx) -> str:
    """Every row of the tables a payment touches, as text."""
    with ctx.db.connection() as conn:
        parts = [
            str(conn.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("payments", "webhook_logs", "idempotency_keys", "processor_callbacks")
        ]
    return "\n".join(parts)


# -- tokenization ------------------------------------------------------------------------------


def test_card_details_reach_tokenize_once_and_only_the_token_is_kept(ctx, api, bank, caplog):
    caplog.set_level(logging.DEBUG)
    order = create_order(api, 25000)
    answer = pay(api, order["id"], headers={**AUTH, "Idempotency-Key": "tok-1"})
    assert answer.status_code == 201, answer.text
    payment = answer.json
    (request,) = bank.tokenized
    card = request.details.card
    assert request.details.method == "card"
    assert (card.number, card.expiry_month, card.expiry_year, card.cvv) == (DIGITS, 12, 2035, "987")
    assert (card.holder_name, card.network, card.last4) == ("Asha Rao", "visa", "1111")
    assert request.idempotency_key == payment["id"] and request.merchant_id == TEST_MERCHANT_ID
    assert (request.amount, request.currency) == (25000, "INR")
    token = f"tok_{payment['id']}"
    assert stored_token(ctx, payment["id"]) == token
    assert DIGITS not in repr(request) and "987" not in repr(request)

    # The worker's charge carries the token, the config and the return URL.
    assert payments.process(ctx, payment["id"]) == "success"
    (charge,) = bank.charged
    assert charge.token == token and charge.config == {}
    assert charge.return_url == f"{ctx.settings.checkout_url}/checkout/return/{payment['id']}"

    # Never shown: create answer, replay, GETs, list, webhooks, logs.
    replay = pay(api, order["id"], headers={**AUTH, "Idempotency-Key": "tok-1"})
    seen = [
        answer.text,
        replay.text,
        get(api, f"/api/v1/payments/{payment['id']}").text,
        get(api, f"/api/v1/payments/{payment['id']}/public", headers={}).text,
        get(api, "/api/v1/payments").text,
        caplog.text,
    ]
    with ctx.db.connection() as conn:
        seen += [r["body"] for r in conn.execute("SELECT body FROM webhook_logs").fetchall()]
    for text in seen:
        assert (
            token not in text
            and DIGITS not in text
            and "987" not in text.replace(payment["id"], "")
        )
    rest = everything_at_rest(ctx)
    assert DIGITS not in rest and "Asha Rao" not in rest


def test_upi_reaches_tokenize_with_its_vpa(ctx, api, bank):
    order = create_order(api)
    answer = pay(api, order["id"], {"method": "upi", "vpa": "asha@okbank"})
    assert answer.status_code == 201, answer.text
    (request,) = bank.tokenized
    assert request.details.method == "upi" and request.details.vpa == "asha@okbank"
    assert request.details.card is None


def test_public_checkout_creation_tokenizes_too(ctx, api, bank):
    order = create_order(api)
    answer = post(api, "/api/v1/payments/public", {"order_id": order["id"], **CARD}, {})
    assert answer.status_code == 201, answer.text
    assert len(bank.tokenized) == 1
    assert stored_token(ctx, answer.json["id"]) == f"tok_{answer.json['id']}"


def test_a_refusal_is_a_400_with_the_processors_code_and_nothing_is_written(ctx, api, bank):
    bank.tokenize_mode = "refuse"
    order = create_order(api)
    before = counts(ctx)
    answer = pay(api, order["id"])
    assert answer.status_code == 400, answer.text
    error = answer.json["error"]
    assert error["code"] == "BAD_REQUEST_ERROR"
    assert error["description"] == "The card's CVV is incorrect"
    assert error["reason"] == "INCORRECT_CVV"
    assert counts(ctx) == before


@pytest.mark.parametrize("mode", ["raise", "garbage"])
def test_a_failing_tokenize_is_a_503_with_nothing_written(ctx, api, bank, mode, caplog):
    caplog.set_level(logging.DEBUG)
    bank.tokenize_mode = mode
    order = create_order(api)
    before = counts(ctx)
    answer = pay(api, order["id"])
    assert answer.status_code == 503, answer.text
    assert answer.json["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert int(answer.headers["Retry-After"]) >= 1
    assert counts(ctx) == before
    assert DIGITS not in caplog.text  # the processor's exception message is never logged


def test_a_hanging_tokenize_is_a_503_within_the_bound_and_a_retry_works(make_ctx):
    import falcon.testing

    from paygate.api.app import create_app

    ctx = make_ctx(PAYGATE_TOKENIZE_TIMEOUT_SECONDS="0.5")
    api = falcon.testing.TestClient(create_app(ctx), headers={"Content-Type": "application/json"})
    bank = VaultBank(tokenize_mode="hang")
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, bank.name)
        order = create_order(api)
        before = counts(ctx)
        headers = {**AUTH, "Idempotency-Key": "hang-1"}
        started = time.monotonic()
        answer = pay(api, order["id"], headers=headers)
        elapsed = time.monotonic() - started
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "5"
        assert 0.4 < elapsed < 2.0
        assert counts(ctx) == before
        # The processor is back: the same request under the same key creates the payment.
        bank.tokenize_mode = "ok"
        bank.release_hang.set()
        retry = pay(api, order["id"], headers=headers)
        assert retry.status_code == 201, retry.text
        replay = pay(api, order["id"], headers=headers)
        assert replay.json["id"] == retry.json["id"]
        assert counts(ctx)[0] == before[0] + 1


def test_a_processor_without_tokenize_stores_no_token(ctx, api):
    order = create_order(api)
    answer = pay(api, order["id"])
    assert answer.status_code == 201
    assert stored_token(ctx, answer.json["id"]) is None


# -- capabilities ------------------------------------------------------------------------------


def test_currencies_and_amount_limits_are_refused_with_a_clear_400(ctx, api, bank):
    bank.currencies = frozenset({"USD"})
    order = create_order(api, 25000)
    answer = pay(api, order["id"])
    assert answer.status_code == 400
    assert answer.json["error"]["description"] == (
        "Currency INR is not supported by processor 'vaultbank'"
    )
    bank.currencies = frozenset({"INR"})
    bank.min_amount = 30000
    answer = pay(api, order["id"])
    assert answer.status_code == 400
    assert answer.json["error"]["description"] == (
        "Amount 25000 is below the minimum of 30000 for processor 'vaultbank'"
    )
    bank.min_amount, bank.max_amount = None, 20000
    answer = pay(api, order["id"])
    assert answer.json["error"]["description"] == (
        "Amount 25000 is above the maximum of 20000 for processor 'vaultbank'"
    )
    assert counts(ctx)[0] == 0 and bank.tokenized == []
    bank.max_amount = 25000
    assert pay(api, order["id"]).status_code == 201


# -- buyer actions -----------------------------------------------------------------------------

CHALLENGE = "https://acs.vaultbank.example/challenge/abc"


def due_in(ctx, payment_id: str) -> float:
    with ctx.db.connection() as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM next_check_at - now()) AS s FROM payments WHERE id = %s",
            (payment_id,),
        ).fetchone()
    return float(row["s"])


def test_next_action_is_shown_while_the_buyer_must_act_and_goes_at_settle(ctx, api, bank):
    bank.charges = [ChargeResult.action_required(CHALLENGE, retry_after=600, reference="vb_9")]
    bank.syncs = [ChargeResult.success(reference="vb_9")]
    payment_id = pay(api, create_order(api)["id"]).json["id"]
    merchant_path, public_path = (
        f"/api/v1/payments/{payment_id}",
        f"/api/v1/payments/{payment_id}/public",
    )
    assert "next_action" not in get(api, merchant_path).json

    assert payments.process(ctx, payment_id) == "deferred"
    assert bank.synced == []  # a buyer action is not polled inline
    expected = {"type": "redirect", "url": CHALLENGE}
    merchant_view = get(api, merchant_path).json
    assert merchant_view["status"] == "pending" and merchant_view["next_action"] == expected
    assert get(api, public_path, headers={}).json["next_action"] == expected
    assert 590 < due_in(ctx, payment_id) <= 600  # the challenge's retry_after is honoured
    assert payments.process(ctx, payment_id) == "skipped"  # not due

    # The buyer comes back: asked at once (due now, job dispatched); many returns are harmless.
    returned = payments.buyer_returned(ctx, payment_id)
    assert returned.id == payment_id and returned.next_action.url == CHALLENGE
    assert payments.buyer_returned(ctx, payment_id).status == "pending"
    assert due_in(ctx, payment_id) <= 0
    assert payments.process(ctx, payment_id) == "success"
    assert bank.synced == [payment_id]

    merchant_view = get(api, merchant_path).json
    assert merchant_view["status"] == "success" and "next_action" not in merchant_view
    assert "next_action" not in get(api, public_path, headers={}).json
    with ctx.db.connection() as conn:
        bodies = [r["body"] for r in conn.execute("SELECT body FROM webhook_logs").fetchall()]
        url = conn.execute(
            "SELECT next_action_url FROM payments WHERE id = %s", (payment_id,)
        ).fetchone()["next_action_url"]
    assert url is None and all("next_action" not in body for body in bodies)
    # After settle a return changes nothing.
    assert payments.buyer_returned(ctx, payment_id).status == "success"


def test_buyer_returned_for_an_unknown_payment_is_not_found(ctx):
    with pytest.raises(NotFound):
        payments.buyer_returned(ctx, "pay_doesnotexist00")
