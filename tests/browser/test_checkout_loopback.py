"""Issue 18, Done-when 5: the hosted checkout opened at http://127.0.0.1:<port> while the
configuration names http://localhost:<port> (as by default) takes a payment end to end in
Chromium; and a merchant's development page configured as http://localhost:<port>
(``PAYGATE_CORS_ORIGINS``) but opened at http://127.0.0.1:<port> may call the API from the
browser (the development CORS allow-list treats the loopback names of an origin alike).

The checkout page itself only ever calls its own origin (its CSP says ``connect-src 'self'``;
the checkout app serves the public payment endpoints), so the API call is made from the
merchant's page, a real HTTP server of the test (``paygate.testing.receiver``)."""

from __future__ import annotations

import os
import signal
import time
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from paygate.embedded import free_port
from paygate.testing.receiver import Answer
from tests.browser.test_checkout_page import SETTLED, checkout, payment_of, watch_errors
from tests.factories import create_order
from tests.fixtures import AUTH, TEST_ENV, Gateway, flush_redis, make_settings, reset_record


@pytest.fixture
def localhost_gateway(shared_db, database_url, tmp_path, receiver):
    """API, checkout app and worker whose configured dashboard and checkout origins say
    ``localhost`` (the defaults' form), the checkout on a port known up front."""
    reset_record(database_url, make_settings())
    flush_redis()
    port = free_port()
    env = {
        **os.environ,
        **TEST_ENV,
        "TEST_PROCESSING_DELAY": "500",
        "PAYGATE_JANITOR_INTERVAL": "0.2",
        "PAYGATE_CHECKOUT_URL": f"http://localhost:{port}",
        "PAYGATE_DASHBOARD_URL": f"http://localhost:{free_port()}",
        # The merchant's development page, by its localhost name.
        "PAYGATE_CORS_ORIGINS": f"http://localhost:{urlsplit(receiver.url()).port}",
    }
    gateway = Gateway(env=env, tmp=str(tmp_path))
    try:
        gateway.start_worker()
        gateway.start_api()
        args = ["checkout", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"]
        gateway._spawn("checkout", args)
        gateway.checkout_url = f"http://127.0.0.1:{port}"  # opened by the other loopback name
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(gateway.checkout_url + "/", timeout=2, allow_redirects=False)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, gateway.tail()
                time.sleep(0.1)
        gateway.wait_healthy(worker=True)
        yield gateway
    finally:
        for name in list(gateway.procs):
            gateway.send_signal(name, signal.SIGTERM)
        gateway.stop_all()


SHOP = b"<!doctype html><html><head><title>Shop</title></head><body>Shop</body></html>"


def test_checkout_at_127_0_0_1_takes_a_payment_and_a_page_there_may_call_the_api(
    page, localhost_gateway, receiver
):
    gateway = localhost_gateway
    errors = watch_errors(page)
    order = create_order(gateway, 42000)
    checkout(page, gateway, order["id"])
    assert page.url.startswith("http://127.0.0.1:")
    expect(page.get_by_test_id("order-amount")).to_have_text("₹420.00")
    page.get_by_test_id("method-card").click()
    form = page.get_by_test_id("card-form")
    form.get_by_test_id("card-number-input").fill("4242424242424242")
    form.get_by_test_id("expiry-input").fill("1230")
    form.get_by_test_id("cvv-input").fill("123")
    form.get_by_test_id("cardholder-name-input").fill("Asha Rao")
    form.get_by_test_id("pay-button").click()
    expect(page.get_by_test_id("processing-state")).to_be_visible()
    success = page.get_by_test_id("success-state")
    expect(success).to_be_visible(timeout=SETTLED)
    payment_id = success.get_by_test_id("payment-id").inner_text()
    payment = payment_of(gateway, payment_id)
    assert (payment["order_id"], payment["status"], payment["amount"]) == (
        order["id"],
        "success",
        42000,
    )
    assert (payment["method"], payment["card_last4"]) == ("card", "4242")
    assert errors == []

    # The merchant's page at http://127.0.0.1:<port> (configured: http://localhost:<port>) reads
    # the payment through the API, with credential headers (so Chromium sends a preflight).
    receiver.answer("/shop", Answer(200, SHOP, {"Content-Type": "text/html; charset=utf-8"}))
    shop = receiver.url("/shop")
    page.goto(shop)
    assert shop.startswith("http://127.0.0.1:")
    answer = page.evaluate(
        """async ([url, headers]) => {
            const r = await fetch(url, {headers});
            return {status: r.status, body: await r.json()};
        }""",
        [f"{gateway.url}/api/v1/payments/{payment_id}", AUTH],
    )
    assert answer["status"] == 200 and answer["body"]["status"] == "success", answer
    origin = f"http://127.0.0.1:{urlsplit(shop).port}"
    preflight = requests.options(
        f"{gateway.url}/api/v1/payments/{payment_id}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key,x-api-secret",
        },
        timeout=5,
    )
    assert preflight.headers.get("Access-Control-Allow-Origin") == origin
