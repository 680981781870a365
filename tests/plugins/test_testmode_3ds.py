"""The test processor's v2 side: in-process tokenization that keeps only the behaviour class,
3-D Secure for card 4000 0000 0000 3220 (challenge, timeout), and its signed callbacks."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from paygate import (
    CallbackRequest,
    CardDetails,
    ChargeRequest,
    MethodDetails,
    Outcome,
    Payment,
    PaymentStatus,
    TokenizeRequest,
)
from paygate.builtin.processors import testmode
from paygate.plugins import load_plugins
from tests.fixtures import make_settings

CHALLENGE_NUMBER = "4000000000003220"


def processor(**env):
    settings = make_settings(TEST_PROCESSING_DELAY="0", **env)
    return load_plugins(settings, entry_points=False).processor("test")


def card(number: str) -> MethodDetails:
    return MethodDetails(
        method="card",
        card=CardDetails(
            number=number,
            expiry_month=12,
            expiry_year=2035,
            cvv="123",
            network="visa",
            last4=number[-4:],
        ),
    )


def tokenize(proc, details: MethodDetails) -> str:
    result = proc.tokenize(
        TokenizeRequest(
            details=details, merchant_id="m", amount=50000, currency="INR", idempotency_key="pay_x"
        )
    )
    assert result.error_code is None
    return result.token


def payment(token: str | None, last4: str = "3220", age: float = 0.0, **changes) -> Payment:
    created = datetime.now(UTC) - timedelta(seconds=age)
    base = Payment(
        id="pay_3dsTestPayment01",
        merchant_id="m",
        order_id="order_x",
        amount=50000,
        currency="INR",
        method="card",
        status=PaymentStatus.PENDING,
        card_network="visa",
        card_last4=last4,
        method_token=token,
        created_at=created,
        updated_at=created,
    )
    return replace(base, **changes)


def test_tokens_are_opaque_random_and_carry_only_the_behaviour_class():
    proc = processor()
    first = tokenize(proc, card(CHALLENGE_NUMBER))
    second = tokenize(proc, card(CHALLENGE_NUMBER))
    assert first != second and first.startswith("tok_test_challenge_")
    assert "3220" not in first and CHALLENGE_NUMBER not in first and len(first) <= 255
    assert tokenize(proc, card("4242424242424242")).startswith("tok_test_succeed_")
    # By network and last 4, like a payment's record: any visa ending 4242 always succeeds.
    assert tokenize(proc, card("4000000000024242")).startswith("tok_test_succeed_")
    assert tokenize(proc, card("4000000000000002")).startswith("tok_test_decline_")
    assert tokenize(proc, card("4111111111111111")).startswith("tok_test_normal_")
    upi = MethodDetails(method="upi", vpa="failure@test")
    assert tokenize(proc, upi).startswith("tok_test_decline_")


def test_tokenize_costs_nothing_measurable():
    proc = processor()
    details = card(CHALLENGE_NUMBER)
    started = time.perf_counter()
    for _ in range(1000):
        tokenize(proc, details)
    assert time.perf_counter() - started < 0.5  # well under a millisecond each


def test_the_3ds_card_asks_for_the_challenge_until_the_timeout():
    proc = processor(PAYGATE_TESTMODE_CHALLENGE_SECONDS="600")
    token = tokenize(proc, card(CHALLENGE_NUMBER))
    fresh = payment(token, age=100)
    result = proc.charge(ChargeRequest(payment=fresh, idempotency_key=fresh.id, token=token))
    assert result.outcome == Outcome.PENDING
    assert result.next_action.type == "redirect"
    assert result.next_action.url == (f"{proc.settings.checkout_url}/checkout/challenge/{fresh.id}")
    assert 495 < result.retry_after <= 500
    again = proc.sync(fresh)
    assert again.outcome == Outcome.PENDING and again.next_action == result.next_action
    assert proc.awaits_challenge(fresh)

    abandoned = payment(token, age=601)
    late = proc.sync(abandoned)
    assert (late.outcome, late.error_code) == (Outcome.FAILED, "AUTHENTICATION_TIMEOUT")
    assert late.next_action is None
    assert not proc.awaits_challenge(abandoned)


def test_a_payment_without_a_token_keeps_the_old_behaviour():
    proc = processor()
    legacy = payment(None, last4="3220")
    result = proc.sync(legacy)
    assert result.outcome == Outcome.SUCCESS and result.next_action is None
    assert not proc.awaits_challenge(legacy)
    declined = proc.sync(payment(None, last4="0002"))
    assert declined.outcome == Outcome.FAILED


def test_a_token_decides_over_the_last_four():
    proc = processor()
    token = tokenize(proc, card("4000000000000002"))
    assert proc.sync(payment(token, last4="4242")).outcome == Outcome.FAILED


def test_only_pending_test_3ds_payments_await_a_challenge():
    proc = processor()
    token = tokenize(proc, card(CHALLENGE_NUMBER))
    assert not proc.awaits_challenge(payment(token, status=PaymentStatus.SUCCESS))
    assert not proc.awaits_challenge(payment(token, processor="slowbank"))
    assert not proc.awaits_challenge(payment(tokenize(proc, card("4242424242424242"))))


@pytest.mark.parametrize(
    "answer, outcome, code",
    [("approve", Outcome.SUCCESS, None), ("deny", Outcome.FAILED, "AUTHENTICATION_FAILED")],
)
def test_a_signed_callback_is_located_then_read(answer, outcome, code):
    proc = processor()
    request = proc.challenge_callback("pay_3dsTestPayment01", answer)
    target = proc.callback_target(request)
    assert target.payment_id == "pay_3dsTestPayment01" and target.refund_id is None
    assert target.event_id.startswith("evt_test_")
    result = proc.read_callback(request, config={})
    assert (result.outcome, result.error_code) == (outcome, code)
    assert proc.read_callback(request) == result  # v1-style call without config works too


def test_forged_unsigned_and_malformed_callbacks_are_refused():
    proc = processor()
    signed = proc.challenge_callback("pay_3dsTestPayment01", "deny")
    flipped = json.loads(signed.body)
    flipped["result"] = "approve"
    forged_body = json.dumps(flipped).encode()
    assert proc.read_callback(CallbackRequest(forged_body, dict(signed.headers))) is None
    assert proc.read_callback(CallbackRequest(signed.body, {})) is None
    assert (
        proc.read_callback(CallbackRequest(signed.body, {"paygate-test-signature": "00"})) is None
    )
    # Signed by another gateway (another secret key): refused here.
    other = processor(PAYGATE_SECRET_KEY="another-secret-key-" + "x" * 40)
    assert proc.read_callback(other.challenge_callback("pay_3dsTestPayment01", "approve")) is None
    assert proc.callback_target(CallbackRequest(b"not json", {})) is None
    assert proc.callback_target(CallbackRequest(b'{"payment": 1}', {})) is None
    odd = proc.challenge_callback("pay_3dsTestPayment01", "maybe")
    assert proc.read_callback(odd) is None


def test_the_callback_key_comes_from_the_secret_key():
    dev = processor(PAYGATE_SECRET_KEY="")
    assert dev.callback_key == processor(PAYGATE_SECRET_KEY="").callback_key  # fixed in dev
    one = processor(PAYGATE_SECRET_KEY="k" * 48)
    two = processor(PAYGATE_SECRET_KEY="j" * 48)
    assert len({dev.callback_key, one.callback_key, two.callback_key}) == 3
    assert testmode.SIGNATURE_HEADER == "paygate-test-signature"
