"""Issue 19, done-when 4, in Debian's Chromium against the dashboard under gunicorn and real
PostgreSQL: a few hundred payments over six days; filtering by status and date (then amount
and search) shows exactly the matching rows and their count; "Export CSV" downloads exactly
what ``GET /api/v1/payments`` lists for the same filter; a pending payment that settles in
the record updates its row without a reload; the home page's period presets drive the stats;
and the filtered pages fit a 360 px phone."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from paygate.config import TEST_MERCHANT_ID
from tests import payment_rows
from tests.browser.conftest import PHONE, screenshot
from tests.payment_rows import Row, api_list

ROW = "tr[data-test-id=transaction-row]"


@pytest.fixture
def dashboard_url(gateway_factory) -> str:
    return gateway_factory().start_web("dashboard")


def shown_ids(page) -> list[str]:
    return page.locator(ROW).evaluate_all("rows => rows.map(r => r.dataset.paymentId)")


def test_filter_export_refresh_and_phone(page, ctx, api, dashboard_url):
    now = datetime.now(UTC).replace(microsecond=0)
    rows = payment_rows.varied(300, now - timedelta(minutes=5), days=6)
    watched = Row(77700, now, status="pending", vpa="watch.me@okaxis")  # the newest of all
    payment_rows.insert(ctx, TEST_MERCHANT_ID, [*rows, watched])
    today = now.date()
    first = today - timedelta(days=2)

    page.goto(dashboard_url + "/login")
    page.get_by_test_id("email-input").fill("test@example.com")
    page.get_by_test_id("password-input").fill("any password")
    page.get_by_test_id("login-button").click()
    page.wait_for_url(dashboard_url + "/dashboard")

    # The period presets drive the stats.
    page.get_by_test_id("range-today").click()
    page.wait_for_url("**/dashboard?range=today")
    today_count = sum(1 for r in [*rows, watched] if r.created_at.date() == today)
    expect(page.get_by_test_id("total-transactions")).to_have_text(str(today_count))

    # Status and date range.
    page.goto(dashboard_url + "/dashboard/transactions")
    page.get_by_test_id("status-filter").select_option("success")
    page.get_by_test_id("from-filter").fill(first.isoformat())
    page.get_by_test_id("to-filter").fill(today.isoformat())
    page.get_by_test_id("apply-filters-button").click()
    page.wait_for_url(f"**/dashboard/transactions?*status=success*from={first}*")
    selected = [r for r in rows if r.status == "success" and r.created_at.date() >= first]
    assert len(selected) > 25
    assert shown_ids(page) == payment_rows.newest_first(selected)[:25]
    expect(page.get_by_test_id("match-count")).to_have_text(
        f"{len(selected)} payments match these filters"
    )

    # Then amount (rupees, converted to paise exactly) and a search by card last 4.
    page.get_by_test_id("amount-min-filter").fill("500.50")
    page.get_by_test_id("amount-max-filter").fill("3,000")
    page.get_by_test_id("search-input").fill("4242")
    page.get_by_test_id("apply-filters-button").click()
    page.wait_for_url("**min=500.50**")
    narrowed = [r for r in selected if 50050 <= r.amount <= 300000 and r.card_last4 == "4242"]
    assert narrowed
    expect(page.locator(ROW)).to_have_count(min(len(narrowed), 25))
    assert shown_ids(page) == payment_rows.newest_first(narrowed)[:25]

    # Export CSV of the first filter: exactly the API's list for the same filter.
    page.get_by_test_id("clear-filters-button").click()
    page.goto(dashboard_url + f"/dashboard/transactions?status=success&from={first}&to={today}")
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    download = info.value
    assert download.suggested_filename == f"payments-{today}.csv"
    with open(download.path(), newline="", encoding="utf-8") as handle:
        exported = [line[0] for line in list(csv.reader(handle))[1:]]
    api_query = f"status=success&from={first}&to={today + timedelta(days=1)}"
    assert exported == api_list(api, api_query) == payment_rows.newest_first(selected)

    # Auto-refresh: the newest payment settles in the record; its row follows, no reload.
    page.goto(dashboard_url + "/dashboard/transactions")
    row = page.locator(f"{ROW}[data-payment-id='{watched.id}']")
    expect(row.get_by_test_id("status")).to_have_text("pending")
    expect(page.get_by_test_id("auto-refresh")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    with ctx.db.connection() as conn:
        conn.execute("UPDATE payments SET status = 'success' WHERE id = %s", (watched.id,))
    expect(row.get_by_test_id("status")).to_have_text("success", timeout=8000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.get_by_test_id("refresh-status")).to_contain_text("List updated")

    # A phone: the filtered list and the home page's period fit 360 px.
    page.set_viewport_size(PHONE)
    for path in (
        f"/dashboard/transactions?status=success&from={first}&to={today}&min=500.50",
        "/dashboard?range=7d",
    ):
        page.goto(dashboard_url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways on a phone ({width}px)"
    screenshot(page, "dashboard-home-range-phone")
