"""CONTRACT.md section 2 through the API: card and VPA rules, expiry, networks, check order,
and that a refused payment writes nothing and a card never leaves its request."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from tests.api.helpers import (
    card,
    count,
    create_order,
    error_of,
    pay,
    pay_card,
    pay_upi,
    with_check_digit,
)
from tests.fixtures import AUTH, OTHER_AUTH


@pytest.mark.parametrize(
    ("number", "network", "last4"),
    [
        ("4111111111111111", "visa", "1111"),
        ("5555555555554444", "mastercard", "4444"),
        ("378282246310005", "amex", "0005"),
        ("6011111111111117", "rupay", "1117"),  # 60
        (with_check_digit("652100000000000"), "rupay", "0007"),  # 65
        (with_check_digit("810000000000000"), "rupay", "0002"),  # 81
        (with_check_digit("890000000000000"), "rupay", "0004"),  # 89
        ("4222222222222", "visa", "2222"),  # 13 digits
        (with_check_digit("411111111111111111"), "visa", "1110"),  # 19 digits
        (with_check_digit("510000000000000"), "mastercard", "0008"),  # 51
        (with_check_digit("340000000000000"), "amex", None),  # 34
        (with_check_digit("500000000000000"), "unknown", None),  # 50: no network
        (with_check_digit("900000000000000"), "unknown", None),  # 90: no network
    ],
)
def test_card_network_and_last4_follow_the_contract(api, number, network, last4):
    order = create_order(api)
    result = pay_card(api, order["id"], number=number)
    assert result.status_code == 201, result.text
    assert result.json["card_network"] == network
    assert result.json["card_last4"] == (last4 or number[-4:])
    assert result.json["amount"] == order["amount"] and result.json["status"] == "pending"


def test_spaces_and_dashes_are_stripped_from_the_card_number(api):
    order = create_order(api)
    result = pay_card(api, order["id"], number="4111-1111 1111-1111")
    assert result.status_code == 201, result.text
    assert (result.json["card_network"], result.json["card_last4"]) == ("visa", "1111")


@pytest.mark.parametrize(
    "number",
    [
        "1234567890123456",  # fails Luhn
        "4111111111111112",  # one digit off
        "411111111111",  # 12 digits
        with_check_digit("4111111111111111111"),  # 20 digits
        "4111 1111 1111 111a",
        "４１１１１１１１１１１１１１１１",  # fullwidth digits are not digits here
        "",
    ],
)
def test_bad_card_numbers_are_invalid_card(api, number):
    order = create_order(api)
    status, code, _ = error_of(pay_card(api, order["id"], number=number))
    assert (status, code) == (400, "INVALID_CARD")


def test_a_card_number_sent_as_a_json_number_is_invalid_card(api):
    order = create_order(api)
    status, code, _ = error_of(pay_card(api, order["id"], number=4111111111111111))
    assert (status, code) == (400, "INVALID_CARD")


def _month_before(today: datetime) -> tuple[int, int]:
    return (12, today.year - 1) if today.month == 1 else (today.month - 1, today.year)


def test_expiry_rules(api):
    today = datetime.now(UTC)
    order = create_order(api)
    valid = [
        ("12", str(today.year + 1)),
        (12, today.year + 1),  # numbers
        (f"{today.month:02d}", str(today.year)),  # the current month is still valid
        (today.month, today.year % 100),  # two-digit year, as a number
        (str(today.month), f"{today.year % 100:02d}"),  # two-digit year, as a string
    ]
    for month, year in valid:
        result = pay_card(api, order["id"], expiry_month=month, expiry_year=year)
        assert result.status_code == 201, (month, year, result.text)
    month, year = _month_before(today)
    expired = [
        ("01", "2020"),
        (month, year),
        (str(month), f"{year % 100:02d}"),
        ("13", str(today.year + 1)),
        ("0", str(today.year + 1)),
        (0, today.year + 1),
        ("1.5", str(today.year + 1)),
        (12.0, today.year + 1),
        (None, today.year + 1),
        ("12", "203"),  # three digits is neither a two- nor a four-digit year
        (True, today.year + 1),
    ]
    for month, year in expired:
        status, code, _ = error_of(pay_card(api, order["id"], expiry_month=month, expiry_year=year))
        assert (status, code) == (400, "EXPIRED_CARD"), (month, year)


@pytest.mark.parametrize("vpa", ["user@paytm", "first.last-1_x@okhdfc", "success@test"])
def test_valid_vpas_are_accepted(api, vpa):
    order = create_order(api)
    result = pay_upi(api, order["id"], vpa)
    assert result.status_code == 201, result.text
    assert result.json["vpa"] == vpa and result.json["method"] == "upi"


@pytest.mark.parametrize(
    "vpa", ["invalid-vpa", "a@b.c", "@bank", "user@", "user@paytm\n", "us er@paytm", "ü@bank", 42]
)
def test_invalid_vpas_are_invalid_vpa(api, vpa):
    order = create_order(api)
    status, code, _ = error_of(pay_upi(api, order["id"], vpa))
    assert (status, code) == (400, "INVALID_VPA")


def test_check_order_is_order_then_method_then_fields(api, other_merchant):
    mine = create_order(api)
    theirs = create_order(api, headers=OTHER_AUTH)
    bad_everything = {"method": "cash", "vpa": "invalid-vpa"}
    # 1. the order: missing or another merchant's is a 404, whatever else is wrong
    for order_id in ("order_doesnotexist0000", theirs["id"]):
        result = pay(api, {"order_id": order_id, **bad_everything})
        assert error_of(result)[:3] == (404, "NOT_FOUND_ERROR", "Order not found")
    # 2. then the method
    result = pay(api, {"order_id": mine["id"], **bad_everything})
    assert error_of(result)[:2] == (400, "BAD_REQUEST_ERROR")
    assert result.json["error"]["field"] == "method"
    # 3. then the method's fields
    result = pay(api, {"order_id": mine["id"], "method": "upi", "vpa": "invalid-vpa"})
    assert error_of(result)[:2] == (400, "INVALID_VPA")
    result = pay(api, {"order_id": mine["id"], "method": "card", "card": card("1234567890123456")})
    assert error_of(result)[:2] == (400, "INVALID_CARD")


def test_missing_order_id_and_method_fields_are_bad_requests(api):
    order = create_order(api)
    cases = [
        ({"method": "upi", "vpa": "user@paytm"}, "order_id"),
        ({"order_id": order["id"], "vpa": "user@paytm"}, "method"),
        ({"order_id": order["id"], "method": "card"}, "card"),
        ({"order_id": order["id"], "method": "card", "card": card(cvv="12")}, "card.cvv"),
        ({"order_id": order["id"], "method": "card", "card": {**card(), "pin": "1"}}, "card.pin"),
        ({"order_id": order["id"], "method": "upi", "vpa": "a@b", "card": card()}, "card"),
        ({"order_id": order["id"], "method": "card", "vpa": "a@b", "card": card()}, "vpa"),
    ]
    for body, field in cases:
        result = pay(api, body)
        assert error_of(result)[:2] == (400, "BAD_REQUEST_ERROR"), body
        assert result.json["error"]["field"] == field
    result = pay(api, {"order_id": order["id"], "method": "upi"})
    assert error_of(result)[:2] == (400, "INVALID_VPA")


def test_a_refused_payment_writes_nothing(ctx, api):
    order = create_order(api)
    refused = [
        {"order_id": order["id"], "method": "upi", "vpa": "invalid-vpa"},
        {"order_id": order["id"], "method": "card", "card": card("1234567890123456")},
        {"order_id": order["id"], "method": "card", "card": card(expiry_year="2020")},
        {"order_id": order["id"], "method": "bank"},
        {"order_id": "order_missing000000000", "method": "upi", "vpa": "a@b"},
    ]
    for body in refused:
        assert pay(api, body).status_code in (400, 404)
    assert count(ctx, "payments") == 0
    assert count(ctx, "webhook_logs") == 0
    assert api.simulate_get("/api/v1/test/jobs/status").json["pending"] == 0


def test_only_network_and_last4_of_a_card_are_kept_and_nothing_is_logged(ctx, api, caplog):
    order = create_order(api)
    number, cvv = "5555 5555 5555 4444", "987"
    with caplog.at_level(logging.DEBUG):
        result = pay_card(api, order["id"], number=number, cvv=cvv, holder_name="Zed Q. Holder")
        refused = pay_card(api, order["id"], number="5555555555554445", cvv=cvv)
    assert result.status_code == 201 and refused.status_code == 400
    digits = number.replace(" ", "")
    for text in (result.text, refused.text, caplog.text):
        assert digits not in text and "5555 5555" not in text and "Zed Q." not in text
    assert "987" not in caplog.text
    with ctx.db.connection() as conn:
        row = conn.execute("SELECT * FROM payments WHERE id = %s", (result.json["id"],)).fetchone()
    assert (row["card_network"], row["card_last4"]) == ("mastercard", "4444")
    stored = " ".join(str(value) for value in row.values())
    assert digits not in stored and "Zed Q." not in stored and row["vpa"] is None
    assert not {"number", "cvv", "expiry_month", "expiry_year", "holder_name"} & set(row)


def test_amount_and_currency_come_from_the_order(api):
    order = create_order(api, amount=12345, currency="USD")
    result = pay_upi(api, order["id"])
    assert (result.json["amount"], result.json["currency"]) == (12345, "USD")


def test_amount_99_is_refused_and_100_accepted(api):
    result = api.simulate_post("/api/v1/orders", json={"amount": 99}, headers=AUTH)
    assert error_of(result) == (400, "BAD_REQUEST_ERROR", "amount must be at least 100")
    assert create_order(api, amount=100)["amount"] == 100


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Api-Key": "key_test_abc123"},
        {"X-Api-Key": "key_test_abc123", "X-Api-Secret": "wrong"},
        {"X-Api-Key": "wrong", "X-Api-Secret": "secret_test_xyz789"},
        {"X-Api-Key": "key_test_abc123", "X-Api-Secret": "secret_test_xyz789\u00e9"},
        {"X-Api-Key": "k" * 65, "X-Api-Secret": "secret_test_xyz789"},
    ],
)
def test_bad_credentials_are_401_on_every_merchant_route(api, headers):
    for method, path in [
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/orders/order_x"),
        ("POST", "/api/v1/payments"),
        ("GET", "/api/v1/payments"),
        ("GET", "/api/v1/payments/pay_x"),
        ("POST", "/api/v1/payments/pay_x/capture"),
    ]:
        result = api.simulate_request(method, path, headers=headers, json={"amount": 500})
        assert error_of(result) == (401, "AUTHENTICATION_ERROR", "Invalid API credentials")
