"""The webhooks page's endpoints section in Debian's Chromium against a real dashboard process
and a real worker: add an endpoint by keyboard (labelled fields, event checkboxes), copy its
secret shown once, send it a test that arrives signed with that secret, disable, rotate, delete.
The primary endpoint's form and its contract data-test-ids stay as they are."""

from __future__ import annotations

import json

import pytest
import standardwebhooks
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import CONTRACT_IDS, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def gateway(gateway_factory):
    gw = gateway_factory()
    gw.base = gw.start_web("dashboard")
    gw.start_worker()
    return gw


def stored(ctx) -> list[dict]:
    with ctx.db.connection() as conn:
        return conn.execute("SELECT * FROM webhook_endpoints ORDER BY created_at").fetchall()


def test_endpoints_are_added_tested_disabled_rotated_and_deleted(page, ctx, gateway, receiver):
    base = gateway.base
    sign_in(page, base)
    page.goto(base + "/dashboard/webhooks")
    for test_id in CONTRACT_IDS["/dashboard/webhooks"]:
        expect(page.get_by_test_id(test_id)).to_be_visible()
    section = page.get_by_test_id("webhook-endpoints")
    expect(section.get_by_role("heading", name="More endpoints")).to_be_visible()

    # By keyboard, through the labels: URL, description, one event, then Enter.
    page.get_by_label("URL", exact=True).fill(receiver.url("/orders"))
    page.get_by_label("Description (optional)").fill("Fulfilment")
    checkbox = section.get_by_test_id("endpoint-event-webhook.test")
    checkbox.focus()
    page.keyboard.press("Space")
    expect(checkbox).to_be_checked()
    page.get_by_label("Description (optional)").press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("shown only this once")
    secret = page.get_by_test_id("endpoint-issued-secret").inner_text()
    (row,) = stored(ctx)
    assert row["url"] == receiver.url("/orders") and row["events"] == ["webhook.test"]
    assert secret.startswith("whsec_") and secret not in row["secret_sealed"]
    item = page.get_by_test_id("endpoint-item")
    expect(item.get_by_test_id("endpoint-events")).to_contain_text("webhook.test")
    expect(item.get_by_test_id("endpoint-description")).to_have_text("Fulfilment")
    screenshot(page, "dashboard-webhook-endpoints")

    page.reload()  # sends the add form again: nothing new, and the secret is gone
    expect(page.locator(".flash-info")).to_contain_text("already added")
    expect(page.get_by_test_id("endpoint-issued-secret")).to_have_count(0)
    expect(page.get_by_test_id("endpoint-item")).to_have_count(1)
    assert len(stored(ctx)) == 1
    expect(item.get_by_test_id("endpoint-secret")).to_contain_text(secret[-4:])

    item.get_by_test_id("endpoint-test-button").click()
    expect(page.locator(".flash-success")).to_contain_text("Test event sent to the endpoint")
    (arrived,) = receiver.wait_for("/orders", 1)
    payload = standardwebhooks.Webhook(secret).verify(arrived.body, arrived.headers)
    assert payload["event"] == "webhook.test" == json.loads(arrived.body)["event"]
    page.reload()
    expect(page.get_by_test_id("webhook-endpoint").first).to_contain_text(receiver.url("/orders"))

    item.get_by_test_id("endpoint-disable-button").click()
    expect(item.get_by_test_id("endpoint-state")).to_have_text("disabled")
    assert stored(ctx)[0]["enabled"] is False
    item.get_by_test_id("endpoint-enable-button").click()
    expect(item.get_by_test_id("endpoint-state")).to_have_text("enabled")

    item.get_by_test_id("endpoint-rotate-button").click()
    new = page.get_by_test_id("endpoint-issued-secret").inner_text()
    assert new.startswith("whsec_") and new != secret

    page.get_by_test_id("endpoint-delete-button").click()
    expect(page.locator(".flash-success")).to_contain_text("Endpoint deleted")
    expect(page.get_by_test_id("endpoint-item")).to_have_count(0)
    assert stored(ctx)[0]["deleted_at"] is not None


def test_a_refused_endpoint_keeps_what_was_typed(page, ctx, gateway):
    base = gateway.base
    sign_in(page, base)
    page.goto(base + "/dashboard/webhooks")
    section = page.get_by_test_id("webhook-endpoints")
    section.get_by_test_id("endpoint-url-input").fill("http://169.254.169.254/latest")
    section.get_by_test_id("endpoint-event-payment.failed").check()
    section.get_by_test_id("endpoint-add-button").click()
    expect(page.get_by_test_id("endpoint-error")).to_be_visible()
    expect(section.get_by_test_id("endpoint-url-input")).to_have_value(
        "http://169.254.169.254/latest"
    )
    expect(section.get_by_test_id("endpoint-event-payment.failed")).to_be_checked()
    assert stored(ctx) == []


def test_event_checkboxes_are_real_boxes_and_the_delivery_log_fits_a_desktop(
    page, ctx, gateway, receiver
):
    """The add form's event checkboxes render as small ticked boxes beside their names (not
    full-width empty fields), and with long endpoint URLs the delivery log fits a 1280 px
    window without hiding its Retry buttons behind a scroll."""
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, gateway.base)
    page.goto(gateway.base + "/dashboard/webhooks")
    section = page.get_by_test_id("webhook-endpoints")
    long_url = receiver.url("/" + "a-rather-long-path-segment/" * 4 + "hooks")
    page.get_by_label("URL", exact=True).fill(long_url)
    box = section.get_by_test_id("endpoint-event-webhook.test")
    size = box.bounding_box()
    assert size["width"] <= 24 and size["height"] <= 24, size
    label = box.locator("xpath=..").bounding_box()
    assert abs(label["y"] - size["y"]) < 24, (label, size)  # on the line of its name
    box.check()
    expect(box).to_be_checked()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator(".flash-success")).to_contain_text("shown only this once")
    page.get_by_test_id("endpoint-item").get_by_role("button", name="Send test").click()
    page.goto(gateway.base + "/dashboard/webhooks")
    rows = page.get_by_test_id("webhook-log-item")
    expect(rows.first).to_be_visible()
    wrap = page.get_by_test_id("webhook-logs-table").locator("xpath=..")
    widths = wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert widths[0] <= widths[1], widths
    retry = rows.first.get_by_test_id("retry-webhook-button").bounding_box()
    assert retry["x"] + retry["width"] <= 1280, retry
