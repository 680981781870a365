"""The payments list's filters, one definition for the API, the dashboard's transactions page,
its CSV export and the home page's period, in-process against real PostgreSQL: search by
shape (card last 4, VPA, refund id, payment or order id), amount bounds, bad values as 400,
tenancy, the streamed CSV (auth, injection, quoting, equal to the API's list) and the stats of
a chosen period."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import falcon.testing
import pytest

from paygate.config import TEST_MERCHANT_ID
from paygate.services import dashboard
from paygate.services.views import iso
from paygate.web.dashboard import export
from paygate.web.dashboard.app import create_app
from tests import payment_rows
from tests.dashboard_client import DashboardClient, by_test_id
from tests.fixtures import AUTH, OTHER_AUTH, OTHER_MERCHANT_ID
from tests.payment_rows import Row, api_list

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def client(ctx) -> DashboardClient:
    client = DashboardClient(create_app(ctx))
    client.login()
    return client


def refund_row(ctx, refund_id: str, payment_id: str, merchant_id: str) -> None:
    with ctx.db.connection() as conn:
        conn.execute(
            """INSERT INTO refunds (id, payment_id, merchant_id, amount, status)
               VALUES (%s, %s, %s, 100, 'processed')""",
            (refund_id, payment_id, merchant_id),
        )


def test_search_by_shape_amount_bounds_and_tenancy(api, ctx, other_merchant):
    mine = payment_rows.insert(
        ctx,
        TEST_MERCHANT_ID,
        [
            Row(50050, NOW, method="card", card_last4="4242"),
            Row(50049, NOW - timedelta(minutes=1), method="card", card_last4="1111"),
            Row(100000, NOW - timedelta(minutes=2), vpa="Shop.Owner@OKAXIS"),
            Row(20000, NOW - timedelta(minutes=3), vpa="someone@ybl"),
            Row(30000, NOW - timedelta(minutes=4), order_id="order_4242xyzw4242abcd"),
        ],
    )
    theirs = payment_rows.insert(
        ctx,
        OTHER_MERCHANT_ID,
        [Row(50050, NOW, method="card", card_last4="4242"), Row(60000, NOW, vpa="shop@okaxis")],
    )
    refund_row(ctx, "rfnd_mine0000000001", mine[3].id, TEST_MERCHANT_ID)
    refund_row(ctx, "rfnd_theirs00000001", theirs[1].id, OTHER_MERCHANT_ID)

    assert api_list(api, "search=4242") == [mine[0].id]  # last 4: equal, never an id's part
    assert api_list(api, "search=424") == [mine[4].id]  # not 4 digits: part of an id
    assert api_list(api, "search=4242xyzw") == [mine[4].id]
    assert api_list(api, "search=owner@okaxis") == [mine[2].id]  # VPA: part, any case
    assert api_list(api, "search=@OKAXIS") == [mine[2].id]
    assert api_list(api, "search=rfnd_mine0000000001") == [mine[3].id]  # the refunded payment
    assert api_list(api, "search=rfnd_theirs00000001") == []  # another merchant's refund
    assert api_list(api, f"search={mine[1].order_id[6:14].upper()}") == [mine[1].id]
    assert api_list(api, f"search={mine[1].id[4:]}") == [mine[1].id]
    # Amount bounds in paise, both included.
    assert api_list(api, "amount_min=50050") == [mine[0].id, mine[2].id]
    assert api_list(api, "amount_max=50049") == [mine[1].id, mine[3].id, mine[4].id]
    assert api_list(api, "amount_min=50049&amount_max=50050") == [mine[0].id, mine[1].id]
    assert api_list(api, "amount_min=50050&amount_max=50050&method=card&search=4242") == [
        mine[0].id
    ]
    # The other merchant sees only its own, through every filter.
    assert api_list(api, "search=4242", OTHER_AUTH) == [theirs[0].id]
    assert api_list(api, "search=rfnd_mine0000000001", OTHER_AUTH) == []


@pytest.mark.parametrize(
    ("query", "description"),
    [
        ("amount_min=abc", "amount_min must be an integer"),
        ("amount_min=", "amount_min must be an integer"),
        ("amount_max=12.50", "amount_max must be an integer"),
        ("amount_min=-1", "amount_min must be between 0 and 100000000000"),
        ("amount_max=100000000001", "amount_max must be between 0 and 100000000000"),
        ("amount_min=500&amount_max=499", "amount_min must not be greater than amount_max"),
    ],
)
def test_bad_amount_bounds_are_a_clear_400(api, query, description):
    answer = api.simulate_get(f"/api/v1/payments?{query}", headers=AUTH)
    assert answer.status_code == 400
    error = answer.json["error"]
    assert (error["code"], error["description"]) == ("BAD_REQUEST_ERROR", description)
    assert error["field"] == query.split("=")[0]


def test_csv_is_streamed_equal_to_the_api_list_and_safe_in_a_spreadsheet(
    api, ctx, client, other_merchant, monkeypatch
):
    rows = payment_rows.varied(60, NOW, days=4)
    rows.append(Row(12345, NOW, order_id='=HYPERLINK("x")', vpa='+a,"b"@ok', error_code="-1"))
    rows.append(Row(100, NOW - timedelta(days=1), method="card", status="failed"))
    payment_rows.insert(ctx, TEST_MERCHANT_ID, rows)
    payment_rows.insert(ctx, OTHER_MERCHANT_ID, payment_rows.varied(5, NOW, seed=7))
    monkeypatch.setattr(dashboard, "EXPORT_BATCH", 3)  # many keyset pages
    monkeypatch.setattr(export, "FLUSH_ROWS", 10)

    first, last = (NOW - timedelta(days=2)).date(), NOW.date()
    form = f"status=success&from={first}&to={last}&min=10.00&max=3000"
    api_query = (
        f"status=success&from={first}&to={last + timedelta(days=1)}"
        "&amount_min=1000&amount_max=300000"
    )
    answer = client.get(f"/dashboard/transactions.csv?{form}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="payments-{datetime.now(UTC).date()}.csv"'
    )
    table = list(csv.reader(io.StringIO(answer.text)))
    assert table[0] == list(export.HEADER)
    expected = api_list(api, api_query)
    assert len(expected) > 6  # more than two keyset pages
    assert [line[0] for line in table[1:]] == expected

    # Every row of every filter: the CSV is the API's list; the cells are the record's.
    whole = client.get("/dashboard/transactions.csv").text
    everything = list(csv.reader(io.StringIO(whole)))
    assert [line[0] for line in everything[1:]] == api_list(api)
    by_id = {line[0]: dict(zip(export.HEADER, line, strict=True)) for line in everything[1:]}
    planted = by_id[rows[-2].id]
    assert planted["order_id"] == '\'=HYPERLINK("x")'  # a formula becomes text
    assert planted["vpa"] == '\'+a,"b"@ok'  # comma and quotes round-trip
    assert planted["error_code"] == "'-1"
    assert (planted["amount_paise"], planted["amount"]) == ("12345", "123.45")
    assert planted["created_at"] == iso(NOW)
    card = by_id[rows[-1].id]
    assert (card["card_last4"], card["card_network"], card["vpa"]) == ("1111", "visa", "")
    assert (card["status"], card["captured"], card["amount_refunded_paise"]) == (
        "failed",
        "false",
        "0",
    )

    # Streamed: the WSGI body is a generator, read chunk by chunk, never one string.
    environ = falcon.testing.create_environ(
        "/dashboard/transactions.csv",
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())},
    )
    body = create_app(ctx)(environ, lambda status, headers, exc_info=None: None)
    assert not isinstance(body, list | bytes | str)
    chunks = list(body)
    assert len(chunks) == len(everything) // export.FLUSH_ROWS + 1
    assert b"".join(chunks).decode() == whole


def test_csv_needs_a_session_and_good_filters(ctx, client):
    anonymous = DashboardClient(create_app(ctx))
    answer = anonymous.get("/dashboard/transactions.csv?status=success")
    assert answer.status_code == 303
    assert (
        answer.headers["location"] == "/login?next=/dashboard/transactions.csv%3Fstatus%3Dsuccess"
    )
    bad = client.get("/dashboard/transactions.csv?min=1.234")
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]
    assert "Enter amounts in rupees greater than ₹0.00, like 500.50" in bad.text


def test_transactions_form_filters_pages_and_links_keep_them(ctx, client):
    rows = [Row(50050, NOW - timedelta(minutes=n), status="pending") for n in range(30)]
    rows += [Row(50049, NOW, status="pending"), Row(50050, NOW - timedelta(days=3))]
    payment_rows.insert(ctx, TEST_MERCHANT_ID, rows)
    today = NOW.date()

    query = f"status=pending&from={today}&to={today}&min=500.50&max=500.50"
    found = by_test_id(client.get(f"/dashboard/transactions?{query}").text)
    shown = [row.attrs["data-payment-id"] for row in found["transaction-row"]]
    assert shown == payment_rows.newest_first(rows[:30])[:25]
    assert found["match-count"][0].text == "30 payments match these filters"
    export_link = found["export-csv"][0].attrs["href"]
    assert export_link == f"/dashboard/transactions.csv?{query}"
    page = client.last_html
    escaped = query.replace("&", "&amp;")
    assert f'href="/dashboard/transactions?{escaped}&amp;page=2"' in page  # paging keeps them
    assert 'data-pending="25"' in page

    fragment = client.get(f"/dashboard/transactions?{query}&page=2&fragment=rows")
    assert fragment.status_code == 200
    rows_there = by_test_id(fragment.text)["transaction-row"]
    assert [r.attrs["data-payment-id"] for r in rows_there] == payment_rows.newest_first(rows[:30])[
        25:
    ]
    assert 'data-pending="5"' in fragment.text and "<form" not in fragment.text

    for bad, message in [
        ("min=5.555", "Enter amounts in rupees greater than ₹0.00, like 500.50"),
        ("max=ten", "Enter amounts in rupees greater than ₹0.00, like 500.50"),
        ("min=20&max=10", "The minimum amount must not be more than the maximum amount"),
        ("from=2024-13-01", "Enter dates as YYYY-MM-DD, like 2024-01-31"),
        ("from=2024-02-02&to=2024-02-01", "The start date must not be after the end date"),
    ]:
        answer = client.get(f"/dashboard/transactions?{bad}")
        assert answer.status_code == 400, bad
        found = by_test_id(answer.text)
        assert found["filter-error"][0].text == message
        # Nothing that reads as a result of the refused filter: no count, no export of it.
        assert "match-count" not in found and "export-csv" not in found, bad
        assert "No payments match" not in answer.text, bad

    one = payment_rows.newest_first(rows[:30])[0]
    single = client.get(f"/dashboard/transactions?q={one}")
    assert by_test_id(single.text)["match-count"][0].text == "1 payment matches these filters"


def test_home_stats_and_chart_for_a_chosen_period(ctx, client, test_merchant):
    payment_rows.insert(
        ctx,
        TEST_MERCHANT_ID,
        [
            Row(10000, NOW),
            Row(20000, NOW, status="failed"),
            Row(40000, NOW - timedelta(days=3)),
            Row(80000, NOW - timedelta(days=40)),
        ],
    )
    today = NOW.date()

    def stats(query: str) -> tuple[str, str, str, str]:
        found = by_test_id(client.get(f"/dashboard?{query}").text)
        box = found["stats-container"][0]
        assert box is not None
        return (
            found["total-transactions"][0].text,
            found["total-amount"][0].text,
            found["success-rate"][0].text,
            found["chart-period"][0].attrs["data-caption"],
        )

    assert stats("") == ("4", "₹1,300.00", "75%", "last 14 days")  # the default, unchanged
    assert stats("range=today") == ("2", "₹100.00", "50%", f"{today:%d %b %Y}")
    assert stats("range=7d")[:3] == ("3", "₹500.00", "66.7%")
    assert stats("range=all")[:3] == ("4", "₹1,300.00", "75%")
    first = today - timedelta(days=40)
    assert stats(f"from={first}&to={today - timedelta(days=3)}") == (
        "2",
        "₹1,200.00",
        "100%",
        f"{first:%d %b %Y} – {today - timedelta(days=3):%d %b %Y}",
    )
    overview = dashboard.overview(ctx, test_merchant, today, dashboard.Period(None, today))
    assert overview.days[0].day == first and len(overview.days) == 41
    assert sum(d.total for d in overview.days) == 4
    bad = client.get("/dashboard?from=yesterday")
    assert bad.status_code == 400
    assert (
        by_test_id(bad.text)["range-error"][0].text == "Enter dates as YYYY-MM-DD, like 2024-01-31"
    )
