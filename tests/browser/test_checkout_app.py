"""The checkout app in-process (falcon.testing, real PostgreSQL and Redis): security headers,
the SDK and static files, notices as HTML, the public API on the checkout's own origin, and
money as the buyer reads it. The browser tests cover the same app end to end."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from paygate.web.checkout.app import create_app
from paygate.web.checkout.security import content_security_policy, frame_ancestors
from paygate.web.formatting import money
from tests.factories import service_order

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(ctx) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ctx))


@pytest.fixture
def order(ctx, test_merchant) -> dict:
    return service_order(ctx, test_merchant)


def assert_security_headers(result) -> None:
    csp = result.headers["content-security-policy"]
    assert "unsafe-eval" not in csp and "unsafe-inline" not in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'self' * file:" in csp
    assert result.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (50000, "INR", "₹500.00"),
        (100, "INR", "₹1.00"),
        (123456, "INR", "₹1,234.56"),
        (5, "INR", "₹0.05"),
        (199, "USD", "$1.99"),
        (1000, "JPY", "JPY 10.00"),
    ],
)
def test_money_is_shown_in_major_units_with_two_decimals(amount, currency, shown):
    assert money(amount, currency) == shown


def test_every_kind_of_response_carries_the_security_headers(client, order):
    paths = [
        f"/checkout?order_id={order['id']}",
        "/checkout?order_id=order_missing0000000",
        "/checkout.js",
        "/static/checkout.css",
        f"/api/v1/orders/{order['id']}/public",
        "/api/v1/payments/pay_missing000000000/public",
        "/no/such/page",
        "/",
    ]
    for path in paths:
        path, _, query = path.partition("?")
        assert_security_headers(client.simulate_get(path, query_string=query or None))


def test_page_shows_the_order_and_is_never_cached(client, order):
    result = client.simulate_get("/checkout", params={"order_id": order["id"]})
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/html")
    assert "no-store" in result.headers["cache-control"]
    assert 'data-test-id="order-amount">₹500.00<' in result.text
    assert f'data-test-id="order-id">{order["id"]}<' in result.text
    assert "<script>" not in result.text  # nothing inline: the CSP allows only our files


@pytest.mark.parametrize(
    ("query", "status", "title"),
    [
        ({}, 400, "No order to pay"),
        ({"order_id": "order_missing0000000"}, 404, "Order not found"),
        ({"order_id": "x" * 5000}, 404, "Order not found"),
        ({"order_id": "<script>alert(1)</script>"}, 404, "Order not found"),
    ],
)
def test_bad_links_get_a_clear_html_page(client, query, status, title):
    result = client.simulate_get("/checkout", params=query)
    assert result.status_code == status
    assert result.headers["content-type"].startswith("text/html")
    assert f'data-test-id="notice-title">{title}<' in result.text
    assert "<script>alert" not in result.text  # echoed ids are escaped


def test_paid_order_and_wrong_key_pages(client, ctx, order):
    wrong = client.simulate_get("/checkout", params={"order_id": order["id"], "key": "key_no"})
    assert wrong.status_code == 403
    right = client.simulate_get(
        "/checkout", params={"order_id": order["id"], "key": "key_test_abc123"}
    )
    assert right.status_code == 200
    with ctx.db.connection() as conn:
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = %s", (order["id"],))
    paid = client.simulate_get("/checkout", params={"order_id": order["id"]})
    assert paid.status_code == 409
    assert "This order is already paid" in paid.text


def test_root_redirects_to_the_checkout_with_the_query(client):
    result = client.simulate_get("/", query_string="order_id=order_abc")
    assert result.status_code == 302
    assert result.headers["location"] == "/checkout?order_id=order_abc"
    assert client.simulate_get("/").headers["location"] == "/checkout"


def test_checkout_js_is_the_sdk_and_loads_from_any_site(client):
    result = client.simulate_get("/checkout.js")
    assert result.status_code == 200
    assert result.content == (ROOT / "sdk" / "checkout.js").read_bytes()
    assert result.headers["content-type"].startswith("application/javascript")
    assert result.headers["access-control-allow-origin"] == "*"
    assert "max-age" in result.headers["cache-control"]
    again = client.simulate_get("/checkout.js", headers={"If-None-Match": result.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.simulate_head("/checkout.js").status_code == 200


def test_static_assets_are_fingerprinted_and_cached(client, order):
    page = client.simulate_get("/checkout", params={"order_id": order["id"]}).text
    for name in ("checkout.css", "checkout-page.js", "favicon.svg"):
        assert f"/static/{name}?v=" in page
        result = client.simulate_get(f"/static/{name}")
        assert result.status_code == 200
        assert "max-age=86400" in result.headers["cache-control"]
    assert (
        client.simulate_get("/static/checkout.css").headers["content-type"].startswith("text/css")
    )
    assert client.simulate_get("/static/../app.py").status_code == 404


def test_public_api_is_served_on_the_checkout_origin(client, order):
    created = client.simulate_post(
        "/api/v1/payments/public",
        json={"order_id": order["id"], "method": "upi", "vpa": "user@paytm"},
    )
    assert created.status_code == 201
    assert created.json["status"] == "pending" and created.json["vpa"] == "user@paytm"
    read = client.simulate_get(f"/api/v1/payments/{created.json['id']}/public")
    assert read.json["id"] == created.json["id"]
    public_order = client.simulate_get(f"/api/v1/orders/{order['id']}/public")
    assert public_order.json["merchant_name"] == "Test Merchant"

    invalid = client.simulate_post(
        "/api/v1/payments/public",
        json={"order_id": order["id"], "method": "upi", "vpa": "invalid-vpa"},
    )
    assert invalid.status_code == 400
    assert invalid.json["error"]["code"] == "INVALID_VPA"
    broken = client.simulate_post("/api/v1/payments/public", body=b"{not json")
    assert broken.status_code == 400
    assert broken.json["error"]["code"] == "BAD_REQUEST_ERROR"
    missing = client.simulate_get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "NOT_FOUND_ERROR"


def test_frame_ancestors_come_from_the_configured_list(make_ctx):
    ctx = make_ctx(PAYGATE_FRAME_ANCESTORS="https://shop.example.com, https://*.example.org")
    result = falcon.testing.TestClient(create_app(ctx)).simulate_get("/checkout.js")
    csp = result.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://shop.example.com https://*.example.org" in csp
    assert frame_ancestors(["'none'"]) == "frame-ancestors 'none'"


@pytest.mark.parametrize(
    "source", ["https://a.com; script-src *", "'unsafe-inline'", "https://a.com/path", "a b"]
)
def test_frame_ancestors_refuse_anything_but_a_source(source):
    with pytest.raises(ValueError, match="PAYGATE_FRAME_ANCESTORS"):
        content_security_policy([source])
