"""paygate_client against a real HTTP server (pytest-httpserver, and a raw socket server that
drops connections): error mapping, retries, back-off, Retry-After, Idempotency-Key reuse. No
gateway: these answers are the ones a gateway gives only under trouble."""

from __future__ import annotations

import re
import socket
import threading

import pytest
from werkzeug import Response

from paygate_client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    Paygate,
    PaygateError,
    RateLimitError,
    ServiceUnavailableError,
)

PAYMENT = {
    "id": "pay_AAAAAAAAAAAAAAAA",
    "order_id": "order_BBBBBBBBBBBBBBBB",
    "amount": 50000,
    "currency": "INR",
    "method": "upi",
    "vpa": "success@test",
    "status": "pending",
    "created_at": "2026-12-06T00:00:00Z",
}


def envelope(code: str, description: str, **extra) -> dict:
    return {"error": {"code": code, "description": description, **extra}}


def make_client(base_url: str, max_retries: int = 3) -> tuple[Paygate, list[float]]:
    sleeps: list[float] = []
    client = Paygate(
        "key_test_abc123",
        "secret_test_xyz789",
        base_url=base_url,
        timeout=2.0,
        max_retries=max_retries,
        sleep=sleeps.append,
    )
    return client, sleeps


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (401, envelope("AUTHENTICATION_ERROR", "Invalid API credentials"), AuthenticationError, "AUTHENTICATION_ERROR"),
        (400, envelope("INVALID_VPA", "Invalid VPA format", field="vpa"), InvalidRequestError, "INVALID_VPA"),
        (400, envelope("BAD_REQUEST_ERROR", "amount must be at least 100", field="amount"), InvalidRequestError, "BAD_REQUEST_ERROR"),
        (413, envelope("BAD_REQUEST_ERROR", "Request body too large"), InvalidRequestError, "BAD_REQUEST_ERROR"),
        (422, envelope("BAD_REQUEST_ERROR", "Idempotency-Key reused with different parameters"), InvalidRequestError, "BAD_REQUEST_ERROR"),
        (404, envelope("NOT_FOUND_ERROR", "Payment not found"), NotFoundError, "NOT_FOUND_ERROR"),
        (409, envelope("BAD_REQUEST_ERROR", "in flight"), ConflictError, "BAD_REQUEST_ERROR"),
        (429, envelope("RATE_LIMITED", "Too many"), RateLimitError, "RATE_LIMITED"),
        (503, envelope("SERVICE_UNAVAILABLE", "down"), ServiceUnavailableError, "SERVICE_UNAVAILABLE"),
        (500, envelope("SERVER_ERROR", "Internal server error"), APIError, "SERVER_ERROR"),
        (502, "<html>bad gateway</html>", APIError, "HTTP_502"),
    ],
)  # fmt: skip
def test_errors_map_to_exceptions_with_the_envelopes_fields(httpserver, status, body, kind, code):
    handler = httpserver.expect_request("/api/v1/payments/pay_x")
    headers = {"Request-Id": "req_header", "Retry-After": "7"}
    if isinstance(body, dict):
        body["error"]["request_id"] = "req_body"
        handler.respond_with_json(body, status=status, headers=headers)
    else:
        handler.respond_with_data(body, status=status, headers=headers)
    client, _ = make_client(httpserver.url_for(""), max_retries=0)

    with pytest.raises(kind) as caught:
        client.payments.get("pay_x")
    error = caught.value
    assert isinstance(error, PaygateError)
    assert (error.code, error.http_status, error.retry_after) == (code, status, 7.0)
    if isinstance(body, dict):
        assert error.description == body["error"]["description"]
        assert error.request_id == "req_body"  # the body's, else the header's
        assert error.field == body["error"].get("field")
        assert error.body == body
    else:
        assert error.description == body and error.request_id == "req_header"
    assert str(error).startswith(f"{code}: {error.description}")
    assert f"request id {error.request_id}" in str(error)


def test_a_create_is_retried_through_503_429_and_409_with_one_idempotency_key(httpserver):
    """Retry-After is honoured (capped at 60 s), otherwise exponential back-off with jitter;
    every attempt carries the same key, and the one 201 is what the caller gets."""
    path = "/api/v1/payments"
    answers = [
        (envelope("SERVICE_UNAVAILABLE", "processor"), 503, {"Retry-After": "2"}),
        (envelope("RATE_LIMITED", "slow down"), 429, {"Retry-After": "3600"}),
        (envelope("BAD_REQUEST_ERROR", "in flight"), 409, {}),
        (PAYMENT, 201, {}),
    ]
    for body, status, headers in answers:
        httpserver.expect_ordered_request(path, method="POST").respond_with_json(
            body, status=status, headers=headers
        )
    client, sleeps = make_client(httpserver.url_for(""))

    payment = client.payments.create(order_id=PAYMENT["order_id"], method="upi", vpa="success@test")

    assert payment.id == PAYMENT["id"] and payment.amount == 50000
    assert sleeps[:2] == [2.0, 60.0]
    assert 0.5 * 0.5 * 4 <= sleeps[2] <= 0.5 * 4  # attempt 2: 50-100 % of base * 2**2
    keys = {request.headers["Idempotency-Key"] for request, _ in httpserver.log}
    assert len(httpserver.log) == 4 and len(keys) == 1
    assert re.fullmatch(r"[0-9a-f-]{36}", keys.pop())
    request = httpserver.log[0][0]
    assert request.headers["X-Api-Key"] == "key_test_abc123"
    assert re.fullmatch(r"paygate-client/\S+ python/3\.\d+\.\d+", request.headers["User-Agent"])
    assert request.get_json() == {
        "order_id": PAYMENT["order_id"],
        "method": "upi",
        "vpa": "success@test",
    }


def test_a_post_without_a_key_is_not_retried_on_500_but_a_get_is(httpserver):
    httpserver.expect_request("/api/v1/payments/pay_x/capture").respond_with_json(
        envelope("SERVER_ERROR", "boom"), status=500
    )
    client, sleeps = make_client(httpserver.url_for(""))
    with pytest.raises(APIError):
        client.payments.capture("pay_x", amount=100)
    assert len(httpserver.log) == 1 and sleeps == []

    httpserver.clear_log()
    httpserver.expect_request("/api/v1/payments/pay_y").respond_with_json(
        envelope("SERVER_ERROR", "boom"), status=500
    )
    with pytest.raises(APIError):
        client.payments.get("pay_y")
    assert len(httpserver.log) == 4  # the first try and three retries
    bounds = [(0.25 * 2**i, 0.5 * 2**i) for i in range(3)]
    assert all(low <= slept <= high for slept, (low, high) in zip(sleeps, bounds, strict=True))

    httpserver.clear_log()
    client, sleeps = make_client(httpserver.url_for(""), max_retries=0)
    with pytest.raises(APIError):
        client.payments.get("pay_y")
    assert len(httpserver.log) == 1 and sleeps == []


class DroppingServer:
    """Reads each request, closes the first ``drops`` connections without answering, then
    answers 201 with ``PAYMENT``. Remembers every request's raw bytes."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        import json

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                if len(self.requests) <= self.drops:
                    continue  # the request arrived; no answer ever comes
                payload = json.dumps(PAYMENT).encode()
                conn.sendall(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)
                )

    def keys(self) -> list[str]:
        return [re.search(rb"(?i)idempotency-key: (\S+)", r)[1].decode() for r in self.requests]

    def close(self) -> None:
        self.sock.close()


def test_a_dropped_connection_is_retried_only_when_the_request_carries_a_key():
    server = DroppingServer(drops=2)
    try:
        client, sleeps = make_client(server.url)
        refund = client.refunds.create("pay_x", 5000, reason="r", idempotency_key="mine-1")
        assert refund.id == PAYMENT["id"]  # the stub answers a payment-shaped body
        assert server.keys() == ["mine-1"] * 3 and len(sleeps) == 2

        # A capture takes no Idempotency-Key: after a drop nobody knows whether it happened,
        # so the client says so rather than capturing twice.
        server.drops, server.requests = 1, []
        with pytest.raises(APIConnectionError) as caught:
            client.payments.capture("pay_x")
        assert len(server.requests) == 1 and caught.value.code == "CONNECTION_ERROR"
    finally:
        server.close()


def test_a_request_that_never_reached_the_server_is_retried_even_without_a_key():
    closed = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens: connection refused
    client, sleeps = make_client(url, max_retries=2)
    with pytest.raises(APIConnectionError):
        client.payments.capture("pay_x")
    assert len(sleeps) == 2


def test_a_body_that_is_not_json_is_an_error_not_a_crash(httpserver):
    httpserver.expect_request("/api/v1/orders/order_x").respond_with_response(
        Response("not json", status=200)
    )
    client, _ = make_client(httpserver.url_for(""))
    with pytest.raises(PaygateError) as caught:
        client.orders.get("order_x")
    assert caught.value.code == "INVALID_RESPONSE"


def test_list_all_pages_through_and_skips_ids_shifted_by_a_new_object(httpserver):
    ids = [f"pay_{n:016d}" for n in range(5)]

    def page(request):
        import json

        limit, offset = int(request.args["limit"]), int(request.args["offset"])
        assert request.args["status"] == "success"
        # An object created after the first page shifts every later page by one.
        rows = ids if offset == 0 else ["pay_new0000000000000", *ids]
        data = [{**PAYMENT, "id": i, "status": "success"} for i in rows[offset : offset + limit]]
        body = {"data": data, "total": len(rows), "limit": limit, "offset": offset}
        return Response(json.dumps(body), status=200, content_type="application/json")

    httpserver.expect_request("/api/v1/payments").respond_with_handler(page)
    client, _ = make_client(httpserver.url_for(""))
    found = [p.id for p in client.payments.list_all(page_size=2, status="success")]
    assert found == ids  # each once; the new one sits before the start, so it is not seen
    assert [r.args["offset"] for r, _ in httpserver.log] == ["0", "2", "4"]


def test_payment_filters_are_named_arguments_a_typo_is_a_type_error_extra_passes_the_rest(
    httpserver,
):
    from datetime import UTC, datetime

    httpserver.expect_request("/api/v1/payments").respond_with_json(
        {"data": [], "total": 0, "limit": 10, "offset": 0}
    )
    client, _ = make_client(httpserver.url_for(""))
    with pytest.raises(TypeError, match="stauts"):
        client.payments.list(stauts="failed")
    with pytest.raises(TypeError, match="stauts"):
        client.payments.list_all(stauts="failed")
    assert httpserver.log == []  # refused before anything was sent

    client.payments.list(
        status="failed",
        method="card",
        order_id="order_x",
        from_=datetime(2026, 12, 1, tzinfo=UTC),
        to="2026-12-02",
        search="4242",
        amount_min=100,
        amount_max=0,
        extra={"newer_filter": "x", "status": "ignored: the named one wins"},
    )
    list(client.payments.list_all(page_size=5, amount_min=500, extra={"from": "1700000000"}))
    first, second = (dict(request.args) for request, _ in httpserver.log)
    assert first == {
        "limit": "10",
        "offset": "0",
        "status": "failed",
        "method": "card",
        "order_id": "order_x",
        "from": "2026-12-01T00:00:00+00:00",
        "to": "2026-12-02",
        "search": "4242",
        "amount_min": "100",
        "amount_max": "0",
        "newer_filter": "x",
    }
    assert second == {"limit": "5", "offset": "0", "amount_min": "500", "from": "1700000000"}
