"""The merchant dashboard in Debian's Chromium against real processes: the dashboard under
gunicorn, a Huey worker, PostgreSQL, Redis, and a real HTTP receiver for webhooks.

Every data-test-id of CONTRACT.md section 7 is checked against the database, and every page is
saved as a screenshot at laptop and phone widths (artifacts/screenshots/dashboard-*.png).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC

import pytest
from playwright.sync_api import expect

from paygate.config import TEST_MERCHANT_ID
from paygate.services import auth, merchants, webhooks
from paygate.testing.receiver import Answer
from tests.browser.conftest import screenshot
from tests.factories import service_payment as pay
from tests.fixtures import TEST_SECRET, set_webhook_url, wait_for

CONTRACT_IDS = {
    "/login": ["login-form", "email-input", "password-input", "login-button"],
    "/dashboard": [
        "dashboard",
        "api-credentials",
        "api-key",
        "api-secret",
        "stats-container",
        "total-transactions",
        "total-amount",
        "success-rate",
    ],
    "/dashboard/transactions": ["transactions-table"],
    "/dashboard/webhooks": [
        "webhook-config",
        "webhook-config-form",
        "webhook-url-input",
        "webhook-secret",
        "regenerate-secret-button",
        "save-webhook-button",
        "test-webhook-button",
        "webhook-logs-table",
    ],
    "/dashboard/docs": [
        "api-docs",
        "section-create-order",
        "code-snippet-create-order",
        "section-sdk-integration",
        "code-snippet-sdk",
        "section-webhook-verification",
        "code-snippet-webhook",
    ],
}


@pytest.fixture
def gateway(gateway_factory):
    gw = gateway_factory()
    gw.base = gw.start_web("dashboard")
    gw.start_worker()
    return gw


def sign_in(page, base: str, email: str = "test@example.com", password: str = "any password"):
    page.goto(base + "/login")
    page.get_by_test_id("email-input").fill(email)
    page.get_by_test_id("password-input").fill(password)
    page.get_by_test_id("login-button").click()
    page.wait_for_url(base + "/dashboard")


def rupees(paise: int) -> str:
    return f"₹{paise // 100:,}.{paise % 100:02d}"


def ts(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def query(ctx, sql: str, *params) -> list[dict]:
    with ctx.db.connection() as conn:
        return conn.execute(sql, params).fetchall()


def test_sign_in_stats_rows_refund_and_docs_match_the_database(
    page, ctx, test_merchant, gateway, receiver
):
    base = gateway.base
    set_webhook_url(ctx, receiver.url("/hooks"))
    big = pay(ctx, test_merchant, 250000)
    pay(ctx, test_merchant, 49900)
    pay(ctx, test_merchant, 10000, vpa="failure@test")

    page.goto(base + "/login")
    for test_id in CONTRACT_IDS["/login"]:
        expect(page.get_by_test_id(test_id)).to_be_visible()
    screenshot(page, "dashboard-login-laptop")
    sign_in(page, base)

    for test_id in CONTRACT_IDS["/dashboard"]:
        expect(page.get_by_test_id(test_id)).to_be_visible()
    stats = query(
        ctx,
        """SELECT count(*) AS total, count(*) FILTER (WHERE status = 'success') AS ok,
                  coalesce(sum(amount) FILTER (WHERE status = 'success'), 0)::bigint AS volume
             FROM payments WHERE merchant_id = %s""",
        TEST_MERCHANT_ID,
    )[0]
    box = page.get_by_test_id("stats-container")
    expect(box.get_by_test_id("total-transactions")).to_have_text(str(stats["total"]))
    expect(box.get_by_test_id("total-amount")).to_have_text(rupees(stats["volume"]))
    rate = round(100 * stats["ok"] / stats["total"], 1)
    expect(box.get_by_test_id("success-rate")).to_have_text(f"{rate:g}%")
    credentials = page.get_by_test_id("api-credentials")
    expect(credentials.get_by_test_id("api-key")).to_have_text(test_merchant.api_key)
    expect(credentials.get_by_test_id("api-secret")).to_have_text(TEST_SECRET)
    expect(page.locator("[data-test-id=payments-chart] svg rect.bar-success")).to_have_count(1)
    screenshot(page, "dashboard-home-laptop")

    page.get_by_role("link", name="Transactions").first.click()
    page.wait_for_url(base + "/dashboard/transactions")
    expect(page.get_by_test_id("transactions-table")).to_be_visible()
    records = query(
        ctx,
        """SELECT id, order_id, amount, method, status, created_at FROM payments
            WHERE merchant_id = %s ORDER BY created_at DESC, id DESC""",
        TEST_MERCHANT_ID,
    )
    rows = page.locator("tr[data-test-id=transaction-row]")
    expect(rows).to_have_count(len(records))
    for index, record in enumerate(records):
        row = rows.nth(index)
        expect(row).to_have_attribute("data-payment-id", record["id"])
        expect(row.get_by_test_id("payment-id")).to_have_text(record["id"])
        expect(row.get_by_test_id("order-id")).to_have_text(record["order_id"])
        expect(row.get_by_test_id("amount")).to_have_text(rupees(record["amount"]))
        expect(row.get_by_test_id("method")).to_have_text(record["method"])
        expect(row.get_by_test_id("status")).to_have_text(record["status"])
        expect(row.get_by_test_id("created-at")).to_have_text(ts(record["created_at"]))
    screenshot(page, "dashboard-transactions-laptop")

    page.locator(f"tr[data-payment-id={big['id']}]").get_by_test_id("payment-id").click()
    page.wait_for_url(base + f"/dashboard/transactions/{big['id']}")
    page.get_by_test_id("refund-amount-input").fill("3000.00")
    page.get_by_test_id("refund-button").click()
    expect(page.get_by_test_id("refund-error")).to_have_text(
        "Refund amount exceeds available amount"
    )
    page.get_by_test_id("refund-amount-input").fill("750.25")
    page.get_by_test_id("refund-reason-input").fill("Returned one item")
    page.get_by_test_id("refund-button").click()
    expect(page.locator(".flash-success")).to_contain_text("of ₹750.25 created")
    refund = query(ctx, "SELECT id, amount, reason FROM refunds WHERE payment_id = %s", big["id"])
    assert [(r["amount"], r["reason"]) for r in refund] == [(75025, "Returned one item")]
    refund_id = refund[0]["id"]
    wait_for(
        lambda: (
            query(ctx, "SELECT status FROM refunds WHERE id = %s", refund_id)[0]["status"]
            == "processed"
        ),
        timeout=15,
        message="the worker did not process the refund",
    )
    wait_for(
        lambda: (
            query(
                ctx,
                "SELECT count(*) AS n FROM webhook_logs WHERE resource_id IN (%s, %s)"
                " AND status = 'success'",
                big["id"],
                refund_id,
            )[0]["n"]
            == 5
        ),  # payment.created, .pending, .success; refund.created, .processed
        message="the payment's and refund's webhooks were not all delivered",
    )
    page.reload()
    deliveries = page.get_by_test_id("payment-deliveries")
    for event in ("payment.success", "refund.created", "refund.processed"):
        expect(deliveries).to_contain_text(event)
    expect(page.get_by_test_id("payment-timeline")).to_contain_text(
        "Webhook refund.processed delivered"
    )
    row = page.locator(f"[data-test-id=refund-row][data-refund-id={refund_id}]")
    expect(row).to_contain_text("₹750.25")
    expect(row.locator(".badge")).to_have_text("processed")
    expect(page.get_by_test_id("payment-timeline")).to_contain_text("Refund of ₹750.25 processed")
    screenshot(page, "dashboard-payment-laptop")

    page.goto(base + "/dashboard/docs")
    for test_id in CONTRACT_IDS["/dashboard/docs"]:
        expect(page.get_by_test_id(test_id)).to_be_visible()
    section = page.get_by_test_id("section-create-order")
    expect(section.get_by_test_id("code-snippet-create-order")).to_contain_text(
        test_merchant.api_key
    )
    expect(
        page.get_by_test_id("section-sdk-integration").get_by_test_id("code-snippet-sdk")
    ).to_be_visible()
    expect(page.get_by_test_id("code-snippet-sdk")).to_contain_text("checkout.js")
    expect(page.get_by_test_id("code-snippet-webhook")).to_contain_text("X-Webhook-Signature")
    screenshot(page, "dashboard-docs-laptop")
    page.goto(base + "/dashboard/account")
    screenshot(page, "dashboard-account-laptop")


def test_webhooks_save_regenerate_test_event_and_retry(page, ctx, gateway, receiver):
    base = gateway.base
    failing = {"on": False}
    receiver.answer_with(
        "/hooks",
        lambda request: Answer(500, b"down for maintenance") if failing["on"] else Answer(),
    )
    sign_in(page, base)
    page.goto(base + "/dashboard/webhooks")
    for test_id in CONTRACT_IDS["/dashboard/webhooks"]:
        expect(page.get_by_test_id(test_id)).to_be_visible()
    form = page.get_by_test_id("webhook-config-form")

    url = receiver.url("/hooks")
    form.get_by_test_id("webhook-url-input").fill(url)
    form.get_by_test_id("save-webhook-button").click()
    expect(page.locator(".flash-success")).to_have_text("Webhook URL saved.")
    expect(form.get_by_test_id("webhook-url-input")).to_have_value(url)
    assert merchants.get(ctx, TEST_MERCHANT_ID).webhook_url == url

    old_secret = form.get_by_test_id("webhook-secret").inner_text()
    form.get_by_test_id("regenerate-secret-button").click()
    expect(page.locator(".flash-success")).to_contain_text("New webhook secret generated")
    secret = merchants.get(ctx, TEST_MERCHANT_ID).webhook_secret
    assert secret != old_secret and secret.startswith("whsec_")
    expect(form.get_by_test_id("webhook-secret")).to_have_text(secret)

    form.get_by_test_id("test-webhook-button").click()
    expect(page.locator(".flash-success")).to_contain_text("Test event sent")
    arrived = receiver.wait_for("/hooks", 1)[0]
    assert json.loads(arrived.body)["event"] == "webhook.test"
    expected = hmac.new(secret.encode(), arrived.body, hashlib.sha256).hexdigest()
    assert arrived.headers["X-Webhook-Signature"] == expected  # signed with the new secret
    first_id = query(ctx, "SELECT id FROM webhook_logs")[0]["id"]
    wait_for(lambda: query(ctx, "SELECT status FROM webhook_logs")[0]["status"] == "success")

    failing["on"] = True
    # The form posts and redirects back: that navigation must end before the reload below, or
    # the reload lands on a page being replaced ("Not attached to an active page").
    with page.expect_navigation():
        form.get_by_test_id("test-webhook-button").click()
    page.wait_for_load_state()
    receiver.wait_for("/hooks", 2)
    failed = wait_for(
        lambda: query(
            ctx,
            "SELECT * FROM webhook_logs WHERE id <> %s AND response_code = 500",
            first_id,
        ),
        message="the failing attempt was not recorded",
    )[0]
    page.reload()
    items = page.locator("tr[data-test-id=webhook-log-item]")
    expect(items).to_have_count(2)
    logs = query(ctx, "SELECT * FROM webhook_logs ORDER BY created_at DESC, id DESC")
    for index, log in enumerate(logs):
        item = items.nth(index)
        expect(item).to_have_attribute("data-webhook-id", str(log["id"]))
        expect(item.get_by_test_id("webhook-event")).to_have_text(log["event"])
        expect(item.get_by_test_id("webhook-status")).to_have_text(log["status"])
        expect(item.get_by_test_id("webhook-attempts")).to_have_text(str(log["attempts"]))
        expect(item.get_by_test_id("webhook-last-attempt")).to_have_text(ts(log["last_attempt_at"]))
        expect(item.get_by_test_id("webhook-response-code")).to_have_text(str(log["response_code"]))
        expect(item.get_by_test_id("retry-webhook-button")).to_be_visible()
    screenshot(page, "dashboard-webhooks-laptop")

    page.locator(f"tr[data-webhook-id='{failed['id']}']").get_by_test_id("webhook-event").click()
    expect(page.get_by_test_id("webhook-payload")).to_contain_text('"event": "webhook.test"')
    expect(page.get_by_test_id("attempt-response-code").first).to_have_text("500")
    expect(page.locator(".attempt details").first).to_contain_text("down for maintenance")
    screenshot(page, "dashboard-delivery-laptop")

    failing["on"] = False
    page.go_back()
    page.locator(f"tr[data-webhook-id='{failed['id']}']").get_by_test_id(
        "retry-webhook-button"
    ).click()
    expect(page.locator(".flash-success")).to_contain_text("Retry scheduled")
    wait_for(
        lambda: (
            query(ctx, "SELECT status FROM webhook_logs WHERE id = %s", failed["id"])[0]["status"]
            == "success"
        ),
        timeout=10,
        message="the retried delivery did not succeed",
    )
    retried = [r for r in receiver.to("/hooks") if r.headers["webhook-id"] == str(failed["id"])]
    assert len(retried) >= 2 and all(r.body == retried[0].body for r in retried)
    page.reload()
    item = page.locator(f"tr[data-webhook-id='{failed['id']}']")
    expect(item.get_by_test_id("webhook-status")).to_have_text("success")
    expect(item.get_by_test_id("webhook-response-code")).to_have_text("200")


def test_access_rules_and_every_page_on_a_phone(browser, phone_page, ctx, gateway, other_merchant):
    base = gateway.base
    theirs = pay(ctx, other_merchant, 77700)
    mine = pay(ctx, merchants.get(ctx, TEST_MERCHANT_ID), 12300)

    # No session: every dashboard page sends the browser to the sign-in page.
    phone_page.goto(base + "/dashboard/transactions")
    expect(phone_page).to_have_url(re.compile(r"/login\?next=/dashboard/transactions$"))
    screenshot(phone_page, "dashboard-login-phone")

    # A form that arrives without its CSRF token is refused and changes nothing.
    sign_in(phone_page, base)
    phone_page.goto(base + "/dashboard/webhooks")
    form = phone_page.get_by_test_id("webhook-config-form")
    form.locator("input[name=csrf_token]").evaluate("el => el.remove()")
    phone_page.get_by_test_id("webhook-url-input").fill("https://shop.example.com/hooks")
    phone_page.get_by_test_id("save-webhook-button").click()
    expect(phone_page.get_by_test_id("error-message")).to_contain_text("Reload the page")
    assert merchants.get(ctx, TEST_MERCHANT_ID).webhook_url is None

    set_webhook_url(ctx, "http://127.0.0.1:9/hooks")  # nothing listens there: a failed attempt
    log_id = webhooks.send_test(ctx, merchants.get(ctx, TEST_MERCHANT_ID))["id"]
    wait_for(lambda: query(ctx, "SELECT attempts FROM webhook_logs")[0]["attempts"] >= 1)
    pages = {
        "home": "/dashboard",
        "transactions": "/dashboard/transactions",
        "payment": f"/dashboard/transactions/{mine['id']}",
        "webhooks": "/dashboard/webhooks",
        "delivery": f"/dashboard/webhooks/{log_id}",
        "docs": "/dashboard/docs",
        "account": "/dashboard/account",
    }
    for name, path in pages.items():
        phone_page.goto(base + path)
        for test_id in CONTRACT_IDS.get(path, []):
            expect(phone_page.get_by_test_id(test_id)).to_be_attached()
        width = phone_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} scrolls sideways on a phone ({width}px)"
        screenshot(phone_page, f"dashboard-{name}-phone")

    # Another merchant signs in (in its own browser) and sees only its own data.
    auth.set_password(ctx, other_merchant, "", "other merchant pw", "other merchant pw")
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = other.new_page()
        sign_in(page, base, other_merchant.email, "other merchant pw")
        expect(page.get_by_test_id("total-transactions")).to_have_text("1")
        expect(page.get_by_test_id("api-key")).to_have_text(other_merchant.api_key)
        page.goto(base + "/dashboard/transactions")
        expect(page.locator("tr[data-test-id=transaction-row]")).to_have_count(1)
        expect(page.locator("tr[data-test-id=transaction-row]")).to_have_attribute(
            "data-payment-id", theirs["id"]
        )
        response = page.goto(base + f"/dashboard/transactions/{mine['id']}")
        assert response.status == 404
    finally:
        other.close()
