"""3-D Secure with the test processor in Chromium (issue 16, "Done when" 2): card
4000 0000 0000 3220 gets ``next_action: {"type": "redirect"}``, the page (hosted) or the SDK's
frame (modal) goes to the challenge page, and approve gives ``success`` while deny gives
``failed``/``AUTHENTICATION_FAILED``, with the outcome shown to the buyer and, in the modal,
reported to the merchant page's onSuccess/onFailure. Real API, checkout app and worker."""

from __future__ import annotations

import os
import re
import signal

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.test_checkout_page import SETTLED, checkout, payment_of, watch_errors
from tests.browser.test_sdk import open_modal, press, wait_event
from tests.factories import create_order

CHALLENGE_URL = re.compile(r"/checkout/challenge/(pay_[A-Za-z0-9]+)$")
AUTHENTICATION_FAILED = "The card issuer could not authenticate the buyer"


@pytest.fixture(scope="module")
def gateway(shared_db, database_url, tmp_path_factory):
    """Like ``checkout_gateway``, but the worker knows the checkout's real address (the
    challenge page's URL is ``PAYGATE_CHECKOUT_URL``/checkout/challenge/...), so the checkout
    app starts first."""
    from tests.fixtures import TEST_ENV, Gateway, flush_redis, make_settings, reset_record

    reset_record(database_url, make_settings())
    flush_redis()
    env = {
        **os.environ,
        **TEST_ENV,
        "TEST_PROCESSING_DELAY": "300",
        "PAYGATE_JANITOR_INTERVAL": "0.2",
    }
    gateway = Gateway(env=env, tmp=str(tmp_path_factory.mktemp("three-d-secure")))
    try:
        gateway.checkout_url = gateway.start_web("checkout")
        env["PAYGATE_CHECKOUT_URL"] = gateway.checkout_url
        gateway.start_worker()
        gateway.start_api()
        gateway.wait_healthy(worker=True)
        yield gateway
    finally:
        for name in list(gateway.procs):
            gateway.send_signal(name, signal.SIGINT if name == "worker" else signal.SIGTERM)
        gateway.stop_all()


def fill_challenge_card(scope) -> None:
    scope.get_by_test_id("card-number-input").fill("4000 0000 0000 3220")
    scope.get_by_test_id("expiry-input").fill("12/30")
    scope.get_by_test_id("cvv-input").fill("123")
    scope.get_by_test_id("cardholder-name-input").fill("Asha Rao")


def public_payment(gateway, payment_id: str) -> dict:
    answer = requests.get(f"{gateway.checkout_url}/api/v1/payments/{payment_id}/public", timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_challenged(gateway, payment_id: str, url: str) -> None:
    public = public_payment(gateway, payment_id)
    assert public["status"] == "pending"
    assert public["next_action"] == {"type": "redirect", "url": url}
    assert payment_of(gateway, payment_id)["next_action"]["type"] == "redirect"


@pytest.mark.parametrize("answer", ["approve", "deny"])
def test_hosted_page_goes_through_the_challenge_and_shows_the_outcome(page, gateway, answer):
    errors = watch_errors(page)
    order = create_order(gateway, 50000)
    checkout(page, gateway, order["id"])
    page.get_by_test_id("method-card").click()
    fill_challenge_card(page)
    page.get_by_test_id("pay-button").click()

    page.wait_for_url(CHALLENGE_URL, timeout=SETTLED)
    payment_id = CHALLENGE_URL.search(page.url)[1]
    assert_challenged(gateway, payment_id, page.url)
    expect(page.get_by_test_id("challenge-amount")).to_have_text("₹500.00")
    expect(page.get_by_test_id("challenge-card")).to_contain_text("3220")
    screenshot(page, f"3ds-hosted-challenge-{answer}")
    page.get_by_test_id(f"challenge-{answer}").click()

    page.wait_for_url(re.compile(rf"/checkout\?.*payment_id={payment_id}"), timeout=SETTLED)
    payment = payment_of(gateway, payment_id)
    assert "next_action" not in public_payment(gateway, payment_id)
    if answer == "approve":
        expect(page.get_by_test_id("success-state")).to_be_visible(timeout=SETTLED)
        expect(page.get_by_test_id("payment-id")).to_have_text(payment_id)
        assert payment["status"] == "success"
    else:
        expect(page.get_by_test_id("error-state")).to_be_visible(timeout=SETTLED)
        expect(page.get_by_test_id("error-message")).to_have_text(AUTHENTICATION_FAILED)
        assert (payment["status"], payment["error_code"]) == ("failed", "AUTHENTICATION_FAILED")
    screenshot(page, f"3ds-hosted-{answer}")
    assert errors == []


def test_sdk_modal_challenge_approved_calls_on_success(page, httpserver, gateway):
    order = create_order(gateway, 50000)
    frame = open_modal(page, httpserver, gateway, order["id"])
    press(frame.get_by_test_id("method-card"))
    fill_challenge_card(frame)
    press(frame.get_by_test_id("pay-button"))

    approve = frame.get_by_test_id("challenge-approve")
    expect(approve).to_be_visible(timeout=SETTLED)
    inner = page.locator("[data-test-id=payment-iframe]").element_handle().content_frame()
    payment_id = CHALLENGE_URL.search(inner.url)[1]
    assert_challenged(gateway, payment_id, inner.url)
    expect(page.get_by_test_id("payment-modal")).to_be_visible()  # the merchant page stays
    screenshot(page, "3ds-sdk-challenge")
    press(approve)

    success = wait_event(page, "success", timeout=SETTLED)
    assert success["paymentId"] == payment_id and success["status"] == "success"
    assert success["orderId"] == order["id"]
    expect(page.get_by_test_id("payment-modal")).to_have_count(0)
    assert payment_of(gateway, payment_id)["status"] == "success"


def test_sdk_modal_challenge_denied_calls_on_failure(page, httpserver, gateway):
    order = create_order(gateway, 50000)
    frame = open_modal(page, httpserver, gateway, order["id"])
    press(frame.get_by_test_id("method-card"))
    fill_challenge_card(frame)
    press(frame.get_by_test_id("pay-button"))

    deny = frame.get_by_test_id("challenge-deny")
    expect(deny).to_be_visible(timeout=SETTLED)
    press(deny)

    failure = wait_event(page, "failure", timeout=SETTLED)
    assert failure["status"] == "failed" and failure["orderId"] == order["id"]
    assert failure["error"] == {
        "code": "AUTHENTICATION_FAILED",
        "description": AUTHENTICATION_FAILED,
    }
    expect(page.get_by_test_id("payment-modal")).to_be_visible()
    expect(frame.get_by_test_id("error-state")).to_be_visible()
    # The page came back embedded (the frame's name told it): the embedded layout, and the
    # buyer can try again in the modal.
    inner = page.locator("[data-test-id=payment-iframe]").element_handle().content_frame()
    assert "embedded=true" in inner.url
    payment = payment_of(gateway, failure["paymentId"])
    assert (payment["status"], payment["error_code"]) == ("failed", "AUTHENTICATION_FAILED")
    screenshot(page, "3ds-sdk-denied")


def test_escape_on_the_challenge_page_closes_the_modal_and_the_payment_waits(
    page, httpserver, gateway
):
    order = create_order(gateway, 50000)
    frame = open_modal(page, httpserver, gateway, order["id"])
    press(frame.get_by_test_id("method-card"))
    fill_challenge_card(frame)
    press(frame.get_by_test_id("pay-button"))
    approve = frame.get_by_test_id("challenge-approve")
    expect(approve).to_be_visible(timeout=SETTLED)
    inner = page.locator("[data-test-id=payment-iframe]").element_handle().content_frame()
    payment_id = CHALLENGE_URL.search(inner.url)[1]
    approve.focus()
    # Key down, then up once the modal is gone: the frame's keydown handler closes the modal,
    # and a whole press() sends its keyup into the frame being removed, which can hang
    # (Chromium 156: 10 s element timeouts, and once 300 s with the keyboard's press()).
    page.keyboard.down("Escape")
    wait_event(page, "close")
    expect(page.get_by_test_id("payment-modal")).to_have_count(0)
    page.keyboard.up("Escape")
    assert public_payment(gateway, payment_id)["status"] == "pending"
