"""Dashboard pages in-process against real PostgreSQL: stats, transactions, refunds and capture,
webhook settings, and tenancy (one merchant never sees another's data)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest

from paygate.config import TEST_MERCHANT_ID
from paygate.services import dashboard, merchants, webhooks
from paygate.web.dashboard.app import create_app
from paygate.web.dashboard.render import parse_rupees, percent
from tests.dashboard_client import DashboardClient, by_test_id
from tests.factories import service_payment as pay
from tests.fixtures import OTHER_MERCHANT_ID, TEST_SECRET, set_webhook_url


@pytest.fixture
def client(ctx) -> DashboardClient:
    client = DashboardClient(create_app(ctx))
    client.login()
    return client


def rupee_text(paise: int) -> str:
    return f"₹{paise // 100:,}.{paise % 100:02d}"


def db_stats(ctx, merchant_id: str = TEST_MERCHANT_ID) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute(
            """SELECT count(*) AS total, count(*) FILTER (WHERE status = 'success') AS ok,
                      coalesce(sum(amount) FILTER (WHERE status = 'success'), 0)::bigint AS volume
                 FROM payments WHERE merchant_id = %s""",
            (merchant_id,),
        ).fetchone()


def only(found: dict, test_id: str):
    assert len(found.get(test_id, [])) == 1, f"{test_id}: {len(found.get(test_id, []))} found"
    return found[test_id][0]


def test_home_shows_credentials_and_the_three_stats_from_the_database(client, ctx, test_merchant):
    pay(ctx, test_merchant, 50000)
    pay(ctx, test_merchant, 123456)
    pay(ctx, test_merchant, 20000, vpa="failure@test")
    pay(ctx, test_merchant, 70000, settle=False)
    found = by_test_id(client.get("/dashboard").text)
    stats = db_stats(ctx)
    assert (stats["total"], stats["ok"], stats["volume"]) == (4, 2, 173456)
    assert only(found, "total-transactions").text == str(stats["total"])
    assert only(found, "total-amount").text == rupee_text(stats["volume"]) == "₹1,734.56"
    assert only(found, "success-rate").text == "50%"
    for test_id in ("total-transactions", "total-amount", "success-rate"):
        assert "stats-container" in only(found, test_id).inside
    assert "dashboard" in only(found, "stats-container").inside
    assert only(found, "api-key").text == test_merchant.api_key
    assert only(found, "api-secret").text == TEST_SECRET
    assert only(found, "api-key").inside[-1] == "api-credentials"


def test_an_empty_account_shows_zeros_and_an_empty_state(client):
    page = client.get("/dashboard").text
    found = by_test_id(page)
    assert only(found, "total-transactions").text == "0"
    assert only(found, "total-amount").text == "₹0.00"
    assert only(found, "success-rate").text == "0%"
    assert "No payments yet" in page


def test_success_rate_keeps_one_decimal():
    assert [percent(v) for v in (0, 100, 200 / 3, 12.04, 99.96)] == [
        "0%",
        "100%",
        "66.7%",
        "12%",
        "100%",
    ]


def test_chart_counts_payments_per_day_by_status_for_fourteen_days(ctx, test_merchant):
    ok = pay(ctx, test_merchant, 10000)
    pay(ctx, test_merchant, 20000, vpa="failure@test")
    old = pay(ctx, test_merchant, 30000)
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE payments SET created_at = %s WHERE id = %s", (three_days_ago, old["id"])
        )
        conn.execute(  # outside the window: counted in the totals, not on the chart
            "UPDATE payments SET created_at = now() - interval '20 days' WHERE id = %s",
            (ok["id"],),
        )
    overview = dashboard.overview(ctx, test_merchant)
    today = datetime.now(UTC).date()
    assert [d.day for d in overview.days] == [today - timedelta(days=n) for n in range(13, -1, -1)]
    by_day = {d.day: d for d in overview.days}
    assert (by_day[today].success, by_day[today].failed, by_day[today].volume) == (0, 1, 0)
    back = three_days_ago.date()
    assert (by_day[back].success, by_day[back].volume) == (1, 30000)
    assert sum(d.total for d in overview.days) == 2 and overview.total_transactions == 3


def test_chart_svg_draws_one_bar_segment_per_status_and_day(client, ctx, test_merchant):
    pay(ctx, test_merchant, 10000)
    pay(ctx, test_merchant, 10000)
    pay(ctx, test_merchant, 10000, vpa="failure@test")
    chart = only(by_test_id(client.get("/dashboard").text), "payments-chart")
    assert chart.tag == "div"
    page = client.last_html
    svg = page[page.index('data-test-id="payments-chart"') :]
    svg = svg[: svg.index("</svg>")]
    assert svg.count('class="bar-success"') == 1 and 'data-count="2"' in svg
    assert svg.count('class="bar-failed"') == 1 and svg.count('class="bar-empty"') == 13


def test_transactions_table_rows_match_the_database_newest_first(client, ctx, test_merchant):
    made = [pay(ctx, test_merchant, 10000 + n * 100) for n in range(3)]
    made.append(pay(ctx, test_merchant, 5000, vpa="failure@test"))
    found = by_test_id(client.get("/dashboard/transactions").text)
    only(found, "transactions-table")
    rows = found["transaction-row"]
    with ctx.db.connection() as conn:
        records = conn.execute(
            """SELECT id, order_id, amount, method, status, created_at FROM payments
                WHERE merchant_id = %s ORDER BY created_at DESC, id DESC""",
            (TEST_MERCHANT_ID,),
        ).fetchall()
    assert [row.attrs["data-payment-id"] for row in rows] == [r["id"] for r in records]
    cells = {name: found[name] for name in ("payment-id", "order-id", "amount", "method", "status")}
    for index, record in enumerate(records):
        assert all(cells[name][index].inside[-1] == "transaction-row" for name in cells)
        assert cells["payment-id"][index].text == record["id"]
        assert cells["order-id"][index].text == record["order_id"]
        assert cells["amount"][index].text == rupee_text(record["amount"])
        assert cells["method"][index].text == record["method"]
        assert cells["status"][index].text == record["status"]
        created = record["created_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert found["created-at"][index].text == created
    assert len(made) == len(rows)


def test_transactions_filter_search_and_paginate(client, ctx, test_merchant):
    for _ in range(26):
        pay(ctx, test_merchant, 10000, settle=False)
    failed = pay(ctx, test_merchant, 10000, vpa="failure@test")
    first = by_test_id(client.get("/dashboard/transactions").text)
    assert len(first["transaction-row"]) == 25 and "Showing 1–25 of 27" in client.last_html
    second = by_test_id(client.get("/dashboard/transactions?page=2").text)
    assert len(second["transaction-row"]) == 2
    ids = {r.attrs["data-payment-id"] for r in first["transaction-row"] + second["transaction-row"]}
    assert len(ids) == 27
    only_failed = by_test_id(client.get("/dashboard/transactions?status=failed").text)
    assert [r.attrs["data-payment-id"] for r in only_failed["transaction-row"]] == [failed["id"]]
    searched = by_test_id(client.get(f"/dashboard/transactions?q={failed['id'][4:14]}").text)
    assert [r.attrs["data-payment-id"] for r in searched["transaction-row"]] == [failed["id"]]
    nothing = client.get("/dashboard/transactions?q=no-such-payment")
    assert "No payments match these filters" in nothing.text
    bad = client.get("/dashboard/transactions?status=paid")
    assert bad.status_code == 400 and "status must be one of" in bad.text


def test_refund_from_the_detail_page_with_the_api_messages(client, ctx, test_merchant):
    payment = pay(ctx, test_merchant, 50000)
    detail = f"/dashboard/transactions/{payment['id']}"
    client.get(detail)
    form = {"amount": "600.00", "reason": "too much", "idempotency_key": "dash_over"}
    over = client.post(detail + "/refunds", form)
    assert over.status_code == 400 and "Refund amount exceeds available amount" in over.text
    assert "Amount must" not in over.text
    bad = client.post(detail + "/refunds", {**form, "amount": "12.345"})
    assert bad.status_code == 400 and "Enter an amount in rupees" in bad.text
    form = {"amount": "150.50", "reason": "damaged", "idempotency_key": "dash_once"}
    done = client.post(detail + "/refunds", form)
    assert done.status_code == 303 and done.headers["location"] == detail
    page = client.get(detail).text
    assert "Refund rfnd_" in page and "of ₹150.50 created" in page  # the flash
    again = client.post(detail + "/refunds", form)  # the same form submitted twice
    assert again.status_code == 303
    assert "This refund was already submitted" in client.get(detail).text
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT amount, reason, status FROM refunds WHERE payment_id = %s", (payment["id"],)
        ).fetchall()
    assert rows == [{"amount": 15050, "reason": "damaged", "status": "pending"}]
    page = client.get(detail).text
    refunds = by_test_id(page)["refund-row"]
    assert len(refunds) == 1 and "₹150.50" in refunds[0].text
    assert "Up to ₹349.50 can still be refunded" in page


def test_refund_of_a_payment_that_did_not_succeed_is_refused(client, ctx, test_merchant):
    payment = pay(ctx, test_merchant, 50000, vpa="failure@test")
    detail = f"/dashboard/transactions/{payment['id']}"
    page = client.get(detail).text
    assert 'data-test-id="refund-form"' not in page and "cannot be captured or refunded" in page
    result = client.post(detail + "/refunds", {"amount": "10.00", "idempotency_key": "k1"})
    assert result.status_code == 400 and "Payment not in refundable state" in result.text


def test_capture_once_then_the_api_message(client, ctx, test_merchant):
    payment = pay(ctx, test_merchant, 50000)
    detail = f"/dashboard/transactions/{payment['id']}"
    client.get(detail)
    too_much = client.post(detail + "/capture", {"amount": "500.01"})
    assert too_much.status_code == 400 and "Capture amount exceeds payment amount" in too_much.text
    assert client.post(detail + "/capture", {"amount": "500.00"}).status_code == 303
    page = client.get(detail).text
    assert "Payment captured" in page and "This payment is captured" in page
    twice = client.post(detail + "/capture", {"amount": "500.00"})
    assert twice.status_code == 400 and "Payment already captured" in twice.text


def test_payment_detail_shows_the_timeline_and_its_webhook_attempts(client, ctx, test_merchant):
    set_webhook_url(ctx, "http://127.0.0.1:9/hooks")  # nothing listens: attempts fail
    payment = pay(ctx, test_merchant, 50000)
    with ctx.db.connection() as conn:
        log_ids = [
            r["id"]
            for r in conn.execute(
                "SELECT id FROM webhook_logs WHERE resource_id = %s", (payment["id"],)
            )
        ]
    webhooks.deliver(ctx, str(log_ids[0]))
    page = client.get(f"/dashboard/transactions/{payment['id']}").text
    assert "Payment created" in page and "Payment succeeded" in page
    for event in ("payment.created", "payment.pending", "payment.success"):
        assert event in page
    assert "no response" in page and "#1" in page
    timeline = by_test_id(page)["payment-timeline"][0].text
    assert timeline.count("Webhook payment.") == 3  # created, pending, success
    assert timeline.count("pending 1 attempt, no answer") == 1
    assert timeline.count("pending First attempt on its way") == 2


def test_webhook_settings_save_regenerate_and_test(client, ctx):
    client.get("/dashboard/webhooks")
    found = by_test_id(client.last_html)
    for test_id in (
        "webhook-url-input",
        "webhook-secret",
        "regenerate-secret-button",
        "save-webhook-button",
        "test-webhook-button",
    ):
        assert "webhook-config-form" in only(found, test_id).inside
    assert only(found, "webhook-secret").text == "whsec_test_abc123"

    nothing = client.post("/dashboard/webhooks", {"action": "test", "webhook_url": ""})
    assert nothing.status_code == 400 and "webhook" in nothing.text.lower()
    bad = client.post("/dashboard/webhooks", {"action": "save", "webhook_url": "ftp://x.example"})
    assert bad.status_code == 400 and 'value="ftp://x.example"' in bad.text
    assert merchants.get(ctx, TEST_MERCHANT_ID).webhook_url is None

    url = "http://127.0.0.1:9/hooks"
    assert (
        client.post("/dashboard/webhooks", {"action": "save", "webhook_url": url}).status_code
        == 303
    )
    found = by_test_id(client.get("/dashboard/webhooks").text)
    assert only(found, "webhook-url-input").attrs["value"] == url
    assert "Webhook URL saved." in client.last_html

    client.post("/dashboard/webhooks", {"action": "regenerate", "webhook_url": url})
    secret = merchants.get(ctx, TEST_MERCHANT_ID).webhook_secret
    assert secret.startswith("whsec_") and secret != "whsec_test_abc123"
    found = by_test_id(client.get("/dashboard/webhooks").text)
    assert only(found, "webhook-secret").text == secret

    assert (
        client.post("/dashboard/webhooks", {"action": "test", "webhook_url": url}).status_code
        == 303
    )
    found = by_test_id(client.get("/dashboard/webhooks").text)
    rows = found["webhook-log-item"]
    assert len(rows) == 1
    assert only(found, "webhook-event").text == "webhook.test"
    assert only(found, "webhook-status").text == "pending"
    assert only(found, "webhook-attempts").text == "0"


def test_retry_resets_a_failed_delivery(client, ctx):
    set_webhook_url(ctx, "http://127.0.0.1:9/hooks")
    sent = webhooks.send_test(ctx, merchants.get(ctx, TEST_MERCHANT_ID))
    webhooks.deliver(ctx, sent["id"])
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE webhook_logs SET status = 'failed', attempts = 5 WHERE id = %s", (sent["id"],)
        )
    found = by_test_id(client.get("/dashboard/webhooks").text)
    row = only(found, "webhook-log-item")
    assert row.attrs["data-webhook-id"] == sent["id"]
    assert only(found, "webhook-status").text == "failed"
    assert only(found, "webhook-attempts").text == "5"
    assert only(found, "retry-webhook-button").inside[-1] == "webhook-log-item"
    result = client.post(f"/dashboard/webhooks/{sent['id']}/retry", {"back": "/dashboard/webhooks"})
    assert result.status_code == 303 and result.headers["location"] == "/dashboard/webhooks"
    found = by_test_id(client.get("/dashboard/webhooks").text)
    assert only(found, "webhook-status").text == "pending"
    assert only(found, "webhook-attempts").text == "0"
    detail = client.get(f"/dashboard/webhooks/{sent['id']}").text
    assert '"event": "webhook.test"' in html.unescape(detail) and "no response" in detail


def test_one_merchant_never_sees_another_merchants_data(client, ctx, other_merchant):
    set_webhook_url(ctx, "http://127.0.0.1:9/hooks", OTHER_MERCHANT_ID)
    theirs = pay(ctx, other_merchant, 99900)
    their_log = webhooks.send_test(ctx, other_merchant)["id"]
    home = by_test_id(client.get("/dashboard").text)
    assert only(home, "total-transactions").text == "0"
    assert only(home, "api-key").text != other_merchant.api_key
    assert theirs["id"] not in client.get("/dashboard/transactions").text
    searched = by_test_id(client.get(f"/dashboard/transactions?q={theirs['id']}").text)
    assert "transaction-row" not in searched
    assert client.get(f"/dashboard/transactions/{theirs['id']}").status_code == 404
    refund = client.post(
        f"/dashboard/transactions/{theirs['id']}/refunds",
        {"amount": "1.00", "idempotency_key": "x"},
    )
    capture = client.post(f"/dashboard/transactions/{theirs['id']}/capture", {})
    assert refund.status_code == 404 and capture.status_code == 404
    assert their_log not in client.get("/dashboard/webhooks").text
    assert client.get(f"/dashboard/webhooks/{their_log}").status_code == 404
    retried = client.post(f"/dashboard/webhooks/{their_log}/retry", {})
    assert retried.status_code == 303
    assert "Webhook log not found" in client.get(retried.headers["location"]).text
    with ctx.db.connection() as conn:
        untouched = conn.execute(
            """SELECT (SELECT count(*) FROM refunds) AS refunds,
                      (SELECT captured FROM payments WHERE id = %s) AS captured""",
            (theirs["id"],),
        ).fetchone()
    assert untouched == {"refunds": 0, "captured": False}


def test_unknown_pages_and_ids_answer_a_friendly_404(client):
    for path in (
        "/dashboard/nope",
        "/dashboard/transactions/" + "x" * 300,
        "/dashboard/webhooks/1",
    ):
        result = client.get(path)
        assert result.status_code == 404 and "<html" in result.text


def test_amounts_in_rupees_become_paise():
    assert parse_rupees("1,250.5") == 125050
    assert parse_rupees("₹ 500") == 50000
    assert parse_rupees("0.01") == 1
    for bad in ("", "0", "-5", "1.234", "abc", "1e3", "NaN", "Infinity", "9" * 20):
        assert parse_rupees(bad) is None, bad


def test_the_payment_page_shows_capture_release_and_reference(client, ctx, test_merchant):
    from paygate.services import payments

    payment = pay(ctx, test_merchant, 50000)
    detail = f"/dashboard/transactions/{payment['id']}"
    client.get(detail)
    assert client.post(detail + "/capture", {"amount": "200.00"}).status_code == 303
    page = client.get(detail).text
    assert "Payment captured (" in page
    assert "200.00" in by_test_id(page)["payment-captured"][0].text
    assert by_test_id(page)["payment-processor-reference"][0].text == f"test_{payment['id']}"
    assert "200.00 can still be refunded" in page
    released = pay(ctx, test_merchant, 50000)
    payments.release(ctx, test_merchant, released["id"], None)
    page = client.get(f"/dashboard/transactions/{released['id']}").text
    assert "payment-released" in by_test_id(page)
    assert "The authorization was released" in page
    assert 'data-test-id="capture-form"' not in page and 'data-test-id="refund-form"' not in page
