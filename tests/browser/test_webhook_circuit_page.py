"""The webhooks page shows each endpoint's circuit breaker, in Debian's Chromium against a real
dashboard process: the primary endpoint's breaker opened by real failed deliveries (a real
receiver answering 500) reads "Paused" with its reopen time in words and a machine-readable
``<time>``; another endpoint reads "Delivering"; after a successful delivery, "Delivering"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from paygate.services import merchants, webhooks
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import sign_in
from tests.fixtures import TEST_MERCHANT_ID, set_webhook_url

pytestmark = pytest.mark.browser


def fail_until_open(ctx) -> None:
    merchant = merchants.get(ctx, TEST_MERCHANT_ID)
    for _ in range(ctx.settings.webhook_breaker_failures):
        log_id = webhooks.send_test(ctx, merchant)["id"]
        assert webhooks.deliver(ctx, log_id) == "pending"


def test_the_webhooks_page_shows_a_paused_endpoint_in_words_and_when_it_resumes(
    page, ctx, api, gateway_factory, receiver
):
    receiver.answer("/hooks", 500)
    set_webhook_url(ctx, receiver.url("/hooks"))
    made = api.simulate_post(
        "/api/v1/webhooks/endpoints",
        json={"url": receiver.url("/other")},
        headers={"X-Api-Key": "key_test_abc123", "X-Api-Secret": "secret_test_xyz789"},
    )
    assert made.status_code == 201
    fail_until_open(ctx)
    gateway = gateway_factory()
    base = gateway.start_web("dashboard")
    sign_in(page, base)
    page.goto(base + "/dashboard/webhooks")

    config = page.get_by_test_id("webhook-config")
    primary = config.get_by_test_id("circuit")
    expect(primary).to_have_attribute("data-state", "open")
    expect(primary.get_by_test_id("circuit-state")).to_have_text("Paused")
    expect(primary).to_contain_text(
        f"after {ctx.settings.webhook_breaker_failures} failed attempts in a row"
    )
    retry_at = primary.get_by_test_id("circuit-retry-at")
    expect(retry_at).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT[\d:]+Z$"))
    expect(retry_at).to_contain_text("UTC")
    other = page.get_by_test_id("endpoint-item").get_by_test_id("circuit")
    expect(other.get_by_test_id("circuit-state")).to_have_text("Delivering")
    screenshot(page, "dashboard-webhook-circuit")

    receiver.answer("/hooks", 200)  # fixed: a manual test probes at once and closes it
    log_id = webhooks.send_test(ctx, merchants.get(ctx, TEST_MERCHANT_ID))["id"]
    assert webhooks.deliver(ctx, log_id) == "success"
    page.reload()
    expect(config.get_by_test_id("circuit-state")).to_have_text("Delivering")
    expect(config.get_by_test_id("circuit")).to_have_attribute("data-state", "closed")
