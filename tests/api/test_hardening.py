"""Bad input of every kind gets a 4xx in the error envelope, never a 500 and never a trace;
Request-Id on every answer; CORS for the dashboard and checkout origins."""

from __future__ import annotations

import json

import falcon
import falcon.testing
import pytest

from paygate.api.app import create_app
from tests.api.helpers import card, count, create_order, error_of
from tests.fixtures import AUTH

JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}


def post_raw(api, path: str, body: bytes, content_type: str | None = "application/json"):
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.simulate_post(path, body=body, headers=headers)


def assert_clean_4xx(result, status: int | None = None) -> None:
    assert 400 <= result.status_code < 500, (result.status_code, result.text)
    if status is not None:
        assert result.status_code == status, result.text
    error_of(result)
    assert "Traceback" not in result.text and 'File "' not in result.text


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"   ",
        b"null",
        b"[]",
        b'"a string"',
        b"42",
        b'{"amount": 500,}',
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b'{"amount": 1e400}',
        b'{"amount": "\\ud800"}',
        b"\xff\xfe{}",
        b'{"amount": 500}{"amount": 600}',
    ],
)
def test_malformed_bodies_are_400(ctx, api, body):
    assert_clean_4xx(post_raw(api, "/api/v1/orders", body), 400)
    assert count(ctx, "orders") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "500"},
        {"amount": 500.0},
        {"amount": 500.5},
        {"amount": True},
        {"amount": None},
        {"amount": [500]},
        {"amount": {"value": 500}},
        {"amount": 10**30},
        {"amount": 2**63},
        {"amount": -(2**63) - 1},
        {"amount": 123456789012345678901234567890},
        {"amount": 500, "notes": ["a", "b"]},
        {"amount": 500, "notes": "a"},
        {"amount": 500, "notes": {"n": {"nested": 1}}},
        {"amount": 500, "notes": {"n": 1.5}},
        {"amount": 500, "notes": {"n": 10**20}},
        {"amount": 500, "notes": {f"k{i}": i for i in range(16)}},
        {"amount": 500, "notes": {"k" * 257: "v"}},
        {"amount": 500, "notes": {"k": "v" * 257}},
        {"amount": 500, "notes": {"k\u0000": "v"}},
        {"amount": 500, "notes": {"k": "v\u0000"}},
        {"amount": 500, "receipt": 42},
        {"amount": 500, "receipt": "r" * 41},
        {"amount": 500, "receipt": "r\u0000"},
        {"amount": 500, "currency": "inr"},
        {"amount": 500, "currency": "INR\n"},
        {"amount": 500, "currency": "RUPEES"},
        {"amount": 500, "currency": 356},
        {"amount": 500, "merchant_id": "someone-else"},
        {"amount": 500, "status": "paid"},
    ],
)
def test_wrong_types_unknown_fields_and_out_of_range_values_are_400(ctx, api, body):
    result = api.simulate_post("/api/v1/orders", json=body, headers=AUTH)
    assert_clean_4xx(result, 400)
    assert result.json["error"]["code"] == "BAD_REQUEST_ERROR"
    assert count(ctx, "orders") == 0


def test_unknown_fields_name_the_field(api):
    result = api.simulate_post("/api/v1/orders", json={"amount": 500, "amout": 1}, headers=AUTH)
    assert result.json["error"]["field"] == "amout"
    assert "amout" in result.json["error"]["description"]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 201),
        ("application/json; charset=utf-8", 201),
        ("application/vnd.api+json", 201),
        ("application/merge-patch+json", 201),
        ("application/x-www-form-urlencoded", 201),  # curl -d's default
        (None, 201),
        ("text/plain", 415),
        ("application/xml", 415),
        ("multipart/form-data; boundary=x", 415),
        ("text/json+plain", 415),
        ("application/+json", 415),
    ],
)
def test_content_types(api, content_type, status):
    result = post_raw(api, "/api/v1/orders", b'{"amount": 500}', content_type)
    assert result.status_code == status, result.text
    if status == 415:
        assert_clean_4xx(result, 415)


def test_oversized_bodies_are_413_in_the_envelope_and_write_nothing(ctx, api):
    big = json.dumps({"amount": 500, "receipt": "x" * (64 * 1024)}).encode()
    result = post_raw(api, "/api/v1/orders", big)
    assert_clean_4xx(result, 413)
    assert result.json["error"]["code"] == "BAD_REQUEST_ERROR"
    just_under = json.dumps({"amount": 500, "notes": {"pad": "x" * 200}}).encode()
    assert post_raw(api, "/api/v1/orders", just_under).status_code == 201
    order = create_order(api)
    big_payment = json.dumps(
        {"order_id": order["id"], "method": "upi", "vpa": "a@b", "pad": "x" * 70000}
    ).encode()
    assert_clean_4xx(post_raw(api, "/api/v1/payments", big_payment), 413)
    assert count(ctx, "orders") == 2 and count(ctx, "payments") == 0


UNICODE = ["ünïcödé", "रुपया", "💳🙂", "\u202etxet", "a\u0301", "\ufeff", "𝔘𝔫𝔦"]


@pytest.mark.parametrize("text", UNICODE)
def test_unicode_in_every_string_field_is_stored_or_refused_never_a_500(ctx, api, text):
    order = api.simulate_post(
        "/api/v1/orders",
        json={"amount": 500, "receipt": text, "notes": {text: text}},
        headers=AUTH,
    )
    assert order.status_code == 201, order.text
    assert order.json["receipt"] == text and order.json["notes"] == {text: text}
    read = api.simulate_get(f"/api/v1/orders/{order.json['id']}", headers=AUTH)
    assert read.json["receipt"] == text
    order_id = order.json["id"]
    refusals = [
        ("/api/v1/orders", {"amount": 500, "currency": text}),
        ("/api/v1/payments", {"order_id": text, "method": "upi", "vpa": "a@b"}),
        ("/api/v1/payments", {"order_id": order_id, "method": text, "vpa": "a@b"}),
        ("/api/v1/payments", {"order_id": order_id, "method": "upi", "vpa": f"{text}@bank"}),
        ("/api/v1/payments", {"order_id": order_id, "method": "card", "card": card(text)}),
        ("/api/v1/payments", {"order_id": order_id, "method": "card", "card": card(cvv=text)}),
        (
            "/api/v1/payments",
            {"order_id": order_id, "method": "card", "card": card(expiry_month=text)},
        ),
        ("/api/v1/payments", {"order_id": order_id, text: 1}),
    ]
    for path, body in refusals:
        assert_clean_4xx(api.simulate_post(path, json=body, headers=AUTH))
    holder = api.simulate_post(
        "/api/v1/payments",
        json={"order_id": order_id, "method": "card", "card": card(holder_name=text)},
        headers=AUTH,
    )
    assert holder.status_code == 201 and text not in holder.text
    for path in (
        f"/api/v1/orders/{text}",
        f"/api/v1/orders/{text}/public",
        f"/api/v1/payments/{text}",
        f"/api/v1/payments/{text}/public",
        f"/api/v1/payments/{text}/capture",
    ):
        method = "POST" if path.endswith("capture") else "GET"
        assert_clean_4xx(api.simulate_request(method, path, headers=AUTH), 404)
    listed = api.simulate_get(
        "/api/v1/payments", params={"order_id": text, "search": text}, headers=AUTH
    )
    assert listed.status_code == 200 and listed.json["data"] == []
    for name in ("status", "method", "limit", "offset", "from", "to"):
        assert_clean_4xx(api.simulate_get("/api/v1/payments", params={name: text}, headers=AUTH))


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/%00",
        "/api/v1/orders/order_%00abc",
        "/api/v1/payments/%00/public",
        "/api/v1/orders/%ED%A0%80",  # an encoded lone surrogate
        "/api/v1/orders/%FF%FE",
        "/api/v1/orders/" + "a" * 5000,
    ],
)
def test_hostile_ids_in_paths_are_404(api, path):
    assert_clean_4xx(api.simulate_get(path, headers=AUTH), 404)


def test_nul_and_invalid_utf8_in_queries_and_headers_are_refused(api):
    for query in ("order_id=%00", "search=a%00b", "status=%00", "from=%00", "order_id=%FF"):
        result = api.simulate_get("/api/v1/payments", query_string=query, headers=AUTH)
        assert 200 <= result.status_code < 500 and result.status_code != 201, result.text
        if result.status_code >= 400:
            assert_clean_4xx(result, 400)
    odd_key = api.simulate_post(
        "/api/v1/orders",
        json={"amount": 500},
        headers={**AUTH, "Idempotency-Key": "caf\u00e9"},
    )
    assert_clean_4xx(odd_key, 400)
    assert odd_key.json["error"]["field"] == "Idempotency-Key"
    for key in ("", "k" * 256, "tab\tkey"):
        result = api.simulate_post(
            "/api/v1/orders", json={"amount": 500}, headers={**AUTH, "Idempotency-Key": key}
        )
        assert result.status_code in (201, 400), result.text


def test_request_id_is_on_every_answer_and_a_valid_one_is_echoed(api):
    answers = [
        api.simulate_get("/health"),
        api.simulate_get("/api/v1/nowhere"),
        api.simulate_delete("/api/v1/orders"),
        api.simulate_post("/api/v1/orders", json={"amount": 1}, headers=AUTH),
        api.simulate_post("/api/v1/orders", json={"amount": 500}),
        api.simulate_options("/api/v1/orders"),
        post_raw(api, "/api/v1/orders", b"x" * 70000),
    ]
    ids = [answer.headers.get("Request-Id") for answer in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    echoed = api.simulate_get("/health", headers={"Request-Id": "client-42.a:b_c"})
    assert echoed.headers["Request-Id"] == "client-42.a:b_c"
    legacy = api.simulate_get("/health", headers={"X-Request-Id": "from-proxy"})
    assert legacy.headers["Request-Id"] == "from-proxy"
    for hostile in ("has space", "x" * 129, "new\nline", "<script>", "ünï"):
        replaced = api.simulate_get("/health", headers={"Request-Id": hostile})
        assert replaced.headers["Request-Id"] != hostile
        assert replaced.headers["Request-Id"].startswith("req_")


def test_an_unexpected_error_is_a_500_envelope_without_internals(ctx, caplog):
    class Broken:
        def on_get(self, req, resp):
            raise RuntimeError("secret internal detail")

    app = create_app(ctx)
    app.add_route("/api/v1/broken", Broken())
    client = falcon.testing.TestClient(app)
    result = client.simulate_get("/api/v1/broken", headers={"Request-Id": "trace-me"})
    assert result.status_code == 500
    assert result.json == {
        "error": {
            "code": "SERVER_ERROR",
            "description": "Internal server error",
            "request_id": "trace-me",
        }
    }
    assert "secret internal detail" not in result.text
    assert "trace-me" in caplog.text  # the log line carries the request id for the operator


def test_unknown_routes_and_methods_use_the_envelope(api):
    missing = api.simulate_get("/api/v1/nothing")
    assert error_of(missing)[:2] == (404, "NOT_FOUND_ERROR")
    wrong = api.simulate_delete("/api/v1/payments", headers=AUTH)
    assert error_of(wrong)[0] == 405
    assert "GET" in wrong.headers["Allow"] and "POST" in wrong.headers["Allow"]


# -- CORS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://localhost:3001"])
def test_dashboard_and_checkout_origins_may_call_the_api(api, origin):
    preflight = api.simulate_options(
        "/api/v1/payments/public",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "idempotency-key" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Origin" in preflight.headers["Vary"]
    order = create_order(api)
    actual = api.simulate_get(f"/api/v1/orders/{order['id']}/public", headers={"Origin": origin})
    assert actual.headers["Access-Control-Allow-Origin"] == origin
    assert "Request-Id" in actual.headers["Access-Control-Expose-Headers"]


def test_other_origins_get_no_cors_headers(api):
    for method in ("OPTIONS", "GET"):
        result = api.simulate_request(
            method,
            "/api/v1/test/merchant",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in result.headers


def test_cors_origins_are_configurable(make_ctx):
    ctx = make_ctx(
        PAYGATE_DASHBOARD_URL="https://dash.example.com",
        PAYGATE_CHECKOUT_URL="https://pay.example.com",
        PAYGATE_CORS_ORIGINS="https://shop.example.com, https://admin.example.com",
    )
    client = falcon.testing.TestClient(create_app(ctx))
    for origin in (
        "https://dash.example.com",
        "https://pay.example.com",
        "https://shop.example.com",
        "https://admin.example.com",
    ):
        answer = client.simulate_get("/health", headers={"Origin": origin})
        assert answer.headers["Access-Control-Allow-Origin"] == origin
    stale = client.simulate_get("/health", headers={"Origin": "http://localhost:3000"})
    assert "Access-Control-Allow-Origin" not in stale.headers
    assert falcon.HTTP_200 == stale.status
