"""The hosted checkout page (:3001) in Debian's Chromium, against a real API, checkout app and
worker on real PostgreSQL and Redis: paying by UPI and by card, failures and "Try Again",
validation before any request, notices, and the 360 px layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import create_payment
from tests.fixtures import wait_for

ROOT = Path(__file__).resolve().parents[2]
SETTLED = 10_000  # ms: create, 0.5 s processing, then the page's 2 s poll
A_UPI = {"method": "upi", "vpa": "a@upi"}


def contract_test_ids() -> tuple[set[str], set[str]]:
    """(page ids, SDK ids) exactly as CONTRACT.md section 6 lists them."""
    text = (ROOT / "docs" / "CONTRACT.md").read_text()
    section = text.split("## 6.")[1].split("## 7.")[0]
    sdk = set(re.findall(r"data-test-id=([a-z][a-z-]*)", section))
    page = set(re.findall(r"`([a-z][a-z-]*)`", section.split("`data-test-id`s:")[1]))
    return page - {"data-method"}, sdk


def checkout(page, gateway, order_id: str, **params: str):
    query = "&".join([f"order_id={order_id}", *(f"{k}={v}" for k, v in params.items())])
    return page.goto(f"{gateway.checkout_url}/checkout?{query}")


def watch_errors(page) -> list[str]:
    """Console errors and uncaught exceptions, CSP violations included."""
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def payment_requests(page) -> list[str]:
    sent: list[str] = []
    page.on(
        "request",
        lambda r: r.method == "POST" and "/api/v1/payments" in r.url and sent.append(r.url),
    )
    return sent


def payment_of(gateway, payment_id: str) -> dict:
    response = gateway.api_call("GET", f"/api/v1/payments/{payment_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_upi_payment_shows_processing_then_success_with_the_payment_id(
    page, checkout_gateway, new_order
):
    errors = watch_errors(page)
    order = new_order(50000)
    checkout(page, checkout_gateway, order["id"])

    summary = page.get_by_test_id("order-summary")
    expect(summary.get_by_test_id("order-amount")).to_have_text("₹500.00")
    expect(summary.get_by_test_id("order-id")).to_have_text(order["id"])
    page.get_by_test_id("payment-methods").get_by_test_id("method-upi").click()
    form = page.get_by_test_id("upi-form")
    form.get_by_test_id("vpa-input").fill("success@test")
    screenshot(page, "checkout-upi-desktop")
    form.get_by_test_id("pay-button").click()

    processing = page.get_by_test_id("processing-state")
    expect(processing).to_be_visible()
    expect(processing.get_by_test_id("processing-message")).to_have_text("Processing payment...")
    success = page.get_by_test_id("success-state")
    expect(success).to_be_visible(timeout=SETTLED)
    expect(success.get_by_test_id("success-message")).to_be_visible()
    payment_id = success.get_by_test_id("payment-id").inner_text()
    assert re.fullmatch(r"pay_[A-Za-z0-9]{16}", payment_id)
    screenshot(page, "checkout-success-desktop")

    payment = payment_of(checkout_gateway, payment_id)
    assert (payment["order_id"], payment["method"], payment["vpa"], payment["status"]) == (
        order["id"],
        "upi",
        "success@test",
        "success",
    )
    assert errors == []  # no CSP violation, no script error anywhere in the flow


def test_card_payment_succeeds_and_only_the_last_four_digits_are_kept(
    page, checkout_gateway, new_order
):
    order = new_order(123456)
    checkout(page, checkout_gateway, order["id"])
    expect(page.get_by_test_id("order-amount")).to_have_text("₹1,234.56")
    page.get_by_test_id("method-card").click()
    expect(page.get_by_test_id("method-card")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("upi-form")).to_have_count(0)  # one form, one pay-button
    form = page.get_by_test_id("card-form")
    form.get_by_test_id("card-number-input").fill("4242424242424242")
    expect(form.get_by_test_id("card-number-input")).to_have_value("4242 4242 4242 4242")
    form.get_by_test_id("expiry-input").fill("1230")
    expect(form.get_by_test_id("expiry-input")).to_have_value("12/30")
    form.get_by_test_id("cvv-input").fill("123")
    form.get_by_test_id("cardholder-name-input").fill("Asha Rao")
    screenshot(page, "checkout-card-desktop")
    form.get_by_test_id("pay-button").click()

    expect(page.get_by_test_id("processing-state")).to_be_visible()
    success = page.get_by_test_id("success-state")
    expect(success).to_be_visible(timeout=SETTLED)
    payment = payment_of(checkout_gateway, success.get_by_test_id("payment-id").inner_text())
    assert payment["status"] == "success"
    assert (payment["method"], payment["card_network"], payment["card_last4"]) == (
        "card",
        "visa",
        "4242",
    )
    assert payment["amount"] == 123456


def test_failed_payment_shows_the_error_and_try_again_pays(page, checkout_gateway, new_order):
    """Also walks every data-test-id of CONTRACT.md section 6 through the states."""
    seen: set[str] = set()

    def visible(scope, *test_ids: str):
        for test_id in test_ids:
            expect(scope.get_by_test_id(test_id)).to_be_visible(timeout=SETTLED)
            seen.add(test_id)

    order = new_order(50000)
    checkout(page, checkout_gateway, order["id"])
    visible(page, "checkout-container", "order-summary", "order-amount", "order-id")
    visible(page.get_by_test_id("payment-methods"), "method-upi", "method-card")
    seen.add("payment-methods")
    expect(page.get_by_test_id("method-upi")).to_have_attribute("data-method", "upi")
    expect(page.get_by_test_id("method-card")).to_have_attribute("data-method", "card")

    page.get_by_test_id("method-card").click()
    card = page.get_by_test_id("card-form")
    visible(page, "card-form")
    visible(
        card,
        "card-number-input",
        "expiry-input",
        "cvv-input",
        "cardholder-name-input",
        "pay-button",
    )

    page.get_by_test_id("method-upi").click()
    visible(page, "upi-form")
    upi = page.get_by_test_id("upi-form")
    visible(upi, "vpa-input", "pay-button")
    upi.get_by_test_id("vpa-input").fill("failure@test")
    upi.get_by_test_id("pay-button").click()
    visible(page, "processing-state")
    visible(page.get_by_test_id("processing-state"), "processing-message")

    error = page.get_by_test_id("error-state")
    visible(page, "error-state")
    visible(error, "error-message", "retry-button")
    expect(error.get_by_test_id("error-message")).to_have_text("Payment processing failed")
    expect(error.get_by_test_id("retry-button")).to_have_text("Try Again")
    screenshot(page, "checkout-error-desktop")
    failed = checkout_gateway.api_call("GET", f"/api/v1/payments?order_id={order['id']}").json()
    assert [p["status"] for p in failed["data"]] == ["failed"]

    error.get_by_test_id("retry-button").click()
    expect(page.get_by_test_id("error-state")).to_have_count(0)
    upi = page.get_by_test_id("upi-form")
    expect(upi.get_by_test_id("vpa-input")).to_be_focused()
    upi.get_by_test_id("vpa-input").fill("success@test")
    upi.get_by_test_id("pay-button").click()
    visible(page, "success-state")
    visible(page.get_by_test_id("success-state"), "payment-id", "success-message")
    payment_id = page.get_by_test_id("payment-id").inner_text()
    assert payment_of(checkout_gateway, payment_id)["status"] == "success"

    page_ids, _ = contract_test_ids()
    assert page_ids - seen == set(), "contract data-test-ids never asserted"


def test_invalid_details_get_inline_accessible_errors_and_send_nothing(
    page, checkout_gateway, new_order
):
    order = new_order(50000)
    sent = payment_requests(page)
    checkout(page, checkout_gateway, order["id"])

    upi = page.get_by_test_id("upi-form")
    vpa = upi.get_by_test_id("vpa-input")
    for bad in ("", "invalid-vpa", "a@b.c", "@bank", "user@ok bank"):
        vpa.fill(bad)
        upi.get_by_test_id("pay-button").click()
        expect(vpa).to_have_attribute("aria-invalid", "true")
        expect(vpa).to_be_focused()
        expect(page.locator("#vpa-error")).not_to_be_empty()
    assert "vpa-error" in vpa.get_attribute("aria-describedby").split()
    vpa.fill("user@paytm")  # fixing the field clears its error as the buyer types
    expect(vpa).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#vpa-error")).to_be_empty()

    page.get_by_test_id("method-card").click()
    card = page.get_by_test_id("card-form")
    cases = [
        ("card-number-input", "4242424242424241", "#card-number-error", "valid card number"),
        ("card-number-input", "424242424242", "#card-number-error", "valid card number"),
        ("expiry-input", "13/30", "#card-expiry-error", "MM/YY"),
        ("expiry-input", "01/20", "#card-expiry-error", "expired"),
        ("cvv-input", "12", "#card-cvv-error", "CVV"),
    ]
    card.get_by_test_id("card-number-input").fill("4242424242424241")
    card.get_by_test_id("expiry-input").fill("01/20")
    card.get_by_test_id("pay-button").click()
    for error_id in ("#card-number-error", "#card-expiry-error", "#card-cvv-error"):
        expect(page.locator(error_id)).not_to_be_empty()  # every bad field at once
    expect(card.get_by_test_id("card-number-input")).to_be_focused()  # the first of them
    screenshot(page, "checkout-card-errors-desktop")

    card.get_by_test_id("card-number-input").fill("4242424242424242")
    card.get_by_test_id("expiry-input").fill("12/30")
    card.get_by_test_id("cvv-input").fill("123")
    for test_id, value, error_id, message in cases:
        good = card.get_by_test_id(test_id).input_value()
        card.get_by_test_id(test_id).fill(value)
        card.get_by_test_id("pay-button").click()
        field = card.get_by_test_id(test_id)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_be_focused()
        expect(page.locator(error_id)).to_contain_text(message)
        assert error_id[1:] in field.get_attribute("aria-describedby").split()
        card.get_by_test_id(test_id).fill(good)

    assert sent == []
    listed = checkout_gateway.api_call("GET", f"/api/v1/payments?order_id={order['id']}").json()
    assert listed["total"] == 0


def test_phone_width_layout_fits_and_a_declined_card_shows_the_error(
    phone_page, checkout_gateway, new_order
):
    page = phone_page
    order = new_order(50000)
    checkout(page, checkout_gateway, order["id"])
    expect(page.get_by_test_id("checkout-container")).to_be_visible()
    screenshot(page, "checkout-upi-phone")
    page.get_by_test_id("method-card").click()
    card = page.get_by_test_id("card-form")
    card.get_by_test_id("card-number-input").fill("4000 0000 0000 0002")
    card.get_by_test_id("expiry-input").fill("12/30")
    card.get_by_test_id("cvv-input").fill("321")
    card.get_by_test_id("cardholder-name-input").fill("Ravi Kumar")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for test_id in ("card-number-input", "cvv-input", "pay-button"):
        box = card.get_by_test_id(test_id).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360, test_id
    screenshot(page, "checkout-card-phone")
    card.get_by_test_id("pay-button").click()
    error = page.get_by_test_id("error-state")
    expect(error).to_be_visible(timeout=SETTLED)
    expect(error.get_by_test_id("error-message")).to_have_text("Payment processing failed")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, "checkout-error-phone")


def test_unknown_order_gets_a_clear_not_found_page(page, checkout_gateway):
    response = checkout(page, checkout_gateway, "order_doesNotExist00")
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_test_id("notice-title")).to_have_text("Order not found")
    expect(page.get_by_test_id("checkout-container")).to_have_count(0)
    screenshot(page, "checkout-unknown-order-desktop")

    response = page.goto(f"{checkout_gateway.checkout_url}/checkout")
    assert response.status == 400
    expect(page.get_by_test_id("notice-title")).to_have_text("No order to pay")


def test_paid_order_gets_an_already_paid_page(page, checkout_gateway, new_order):
    order = new_order(50000)
    created = create_payment(checkout_gateway, order_id=order["id"], method=A_UPI)
    wait_for(
        lambda: payment_of(checkout_gateway, created["id"])["status"] == "success",
        timeout=10,
        message="payment never settled",
    )
    response = checkout(page, checkout_gateway, order["id"])
    assert response.status == 409
    expect(page.get_by_test_id("notice-title")).to_have_text("This order is already paid")
    expect(page.get_by_test_id("payment-methods")).to_have_count(0)


@pytest.mark.parametrize(
    ("key", "status", "title"),
    [
        ("key_test_abc123", 200, None),
        ("key_test_someone_else", 403, "This payment link is not valid"),
    ],
)
def test_key_in_the_link_must_belong_to_the_orders_merchant(
    page, checkout_gateway, new_order, key, status, title
):
    order = new_order(50000)
    response = checkout(page, checkout_gateway, order["id"], key=key)
    assert response.status == status
    if title is None:
        expect(page.get_by_test_id("order-id")).to_have_text(order["id"])
    else:
        expect(page.get_by_test_id("notice-title")).to_have_text(title)
        expect(page.get_by_test_id("checkout-container")).to_have_count(0)


def test_root_redirects_to_the_checkout_keeping_the_order(page, checkout_gateway, new_order):
    order = new_order(50000)
    page.goto(f"{checkout_gateway.checkout_url}/?order_id={order['id']}")
    assert page.url == f"{checkout_gateway.checkout_url}/checkout?order_id={order['id']}"
    expect(page.get_by_test_id("order-id")).to_have_text(order["id"])
