"""Hostile input answers 4xx, never 500: a non-ASCII CSRF token, non-ASCII session, flash and
CSRF cookies, and JSON nested deeper than the gateway reads (issue 15, hardening)."""

from __future__ import annotations

import falcon.testing
import pytest

from paygate.api.middleware import MAX_JSON_DEPTH
from paygate.web.checkout.app import create_app as create_checkout
from paygate.web.dashboard.app import create_app as create_dashboard
from tests.api.helpers import count, create_order, error_of
from tests.dashboard_client import DashboardClient
from tests.fixtures import AUTH

# What a browser sends as UTF-8 arrives in WSGI as latin-1 text: "é" becomes "Ã©".
NON_ASCII = ["\u00c3\u00a9", "\u00ff", "caf\u00c3\u00a9.\u00c3\u00a9"]


@pytest.fixture
def dashboard(ctx) -> DashboardClient:
    return DashboardClient(create_dashboard(ctx))


def nested(depth: int) -> str:
    """A JSON value ``depth`` arrays deep."""
    return "[" * depth + "]" * depth


# -- the dashboard -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["\u00e9", "caf\u00e9", "\u2603" * 40])
def test_a_non_ascii_csrf_token_is_refused_with_403_not_500(dashboard, token):
    dashboard.get("/login")
    result = dashboard.post(
        "/login", {"email": "test@example.com", "password": "anything"}, csrf=token
    )
    assert result.status_code == 403, result.text
    assert "Set-Cookie" not in result.headers or "pg_session" not in result.headers["Set-Cookie"]


@pytest.mark.parametrize("value", NON_ASCII)
def test_a_non_ascii_session_cookie_is_no_session(dashboard, value):
    result = dashboard.client.simulate_get("/dashboard", headers={"Cookie": f"pg_session={value}"})
    assert result.status_code == 303, result.text
    assert result.headers["location"].startswith("/login")
    login = dashboard.client.simulate_get("/login", headers={"Cookie": f"pg_session={value}"})
    assert login.status_code == 200, login.text


@pytest.mark.parametrize("value", NON_ASCII)
def test_a_non_ascii_flash_cookie_is_no_flash_on_any_page(dashboard, value):
    dashboard.login()
    cookies = "; ".join(f"{name}={v}" for name, v in dashboard.cookies.items())
    for path in ("/dashboard", "/dashboard/transactions", "/dashboard/webhooks", "/login"):
        result = dashboard.client.simulate_get(
            path, headers={"Cookie": f"{cookies}; pg_flash={value}"}
        )
        assert result.status_code in (200, 303), (path, result.status_code, result.text)


@pytest.mark.parametrize("value", NON_ASCII)
def test_a_non_ascii_csrf_cookie_is_replaced_and_the_form_still_works(dashboard, value):
    page = dashboard.client.simulate_get("/login", headers={"Cookie": f"pg_csrf={value}"})
    assert page.status_code == 200, page.text
    assert page.cookies["pg_csrf"].value.isascii()
    dashboard._keep(page)
    dashboard.last_html = page.text
    assert (
        dashboard.post("/login", {"email": "test@example.com", "password": "x"}).status_code == 303
    )


# -- the API: JSON depth -------------------------------------------------------------------------


def test_json_nested_260_levels_with_an_idempotency_key_is_400_on_the_public_endpoint(ctx, api):
    # orjson writes at most 254 levels: the fingerprint of this body used to raise (a 500).
    order = create_order(api)
    body = f'{{"order_id": "{order["id"]}", "method": "upi", "vpa": {nested(260)}}}'
    result = api.simulate_post(
        "/api/v1/payments/public",
        body=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "deep-1"},
    )
    assert result.status_code == 400, result.text
    assert error_of(result)[1] == "BAD_REQUEST_ERROR"


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/payments", "/api/v1/payments/public"])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 250, 1000, 5000])
def test_json_deeper_than_the_limit_is_400_before_anything_reads_it(ctx, api, path, depth):
    body = f'{{"amount": 500, "notes": {nested(depth - 1)}}}'
    result = api.simulate_post(
        path,
        body=body,
        headers={**AUTH, "Content-Type": "application/json", "Idempotency-Key": f"deep-{depth}"},
    )
    status, code, description = error_of(result)
    assert status == 400 and code == "BAD_REQUEST_ERROR", result.text
    assert str(MAX_JSON_DEPTH) in description
    assert count(ctx, "idempotency_keys") == 0 and count(ctx, "payments") == 0


def test_json_at_the_depth_limit_is_read_as_usual(api):
    # Depth 1 is the body object; notes adds one more: an order's notes refuse nesting, so
    # the answer is the usual validation error, not the depth refusal.
    body = f'{{"amount": 500, "notes": {{"n": {nested(MAX_JSON_DEPTH - 2)}}}}}'
    result = api.simulate_post(
        "/api/v1/orders", body=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    status, _, description = error_of(result)
    assert status == 400 and str(MAX_JSON_DEPTH) not in description, result.text


def test_deep_json_inside_strings_does_not_count(api):
    result = api.simulate_post(
        "/api/v1/orders",
        json={"amount": 500, "receipt": "[" * 40, "notes": {"n": "{" * 200}},
        headers=AUTH,
    )
    assert result.status_code == 201, result.text


def test_deep_json_is_400_on_the_checkout_origin_too(ctx, api):
    """The checkout page's own origin serves the public payment endpoint with the API's
    resources: the same limit applies there."""
    checkout = falcon.testing.TestClient(create_checkout(ctx))
    order = create_order(api)
    body = f'{{"order_id": "{order["id"]}", "method": "upi", "vpa": {nested(260)}}}'
    result = checkout.simulate_post(
        "/api/v1/payments/public",
        body=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "deep-checkout"},
    )
    status, code, description = error_of(result)
    assert (status, code) == (400, "BAD_REQUEST_ERROR") and str(MAX_JSON_DEPTH) in description
