"""Small request builders shared by the API contract tests (orders and payments come from
tests/factories.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.factories import create_order, post, post_payment

__all__ = ["card", "count", "create_order", "error_of", "pay", "pay_card", "pay_upi"]

VISA = "4111111111111111"


def card(number: str = VISA, **overrides: Any) -> dict[str, Any]:
    """A card valid until next year unless overridden."""
    return {
        "number": number,
        "expiry_month": "12",
        "expiry_year": str(datetime.now(UTC).year + 1),
        "cvv": "123",
        "holder_name": "A Buyer",
        **overrides,
    }


def with_check_digit(prefix_and_body: str) -> str:
    """``prefix_and_body`` plus the Luhn check digit that makes it valid."""
    total = 0
    for index, char in enumerate(reversed(prefix_and_body)):
        digit = int(char)
        if index % 2 == 0:  # these are doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return prefix_and_body + str((10 - total % 10) % 10)


def pay(api, body: dict, headers: dict | None = None, path: str = "/api/v1/payments"):
    return post(api, path, body, headers)


def pay_upi(api, order_id: str, vpa: str = "user@paytm", headers: dict | None = None):
    return post_payment(api, order_id, {"method": "upi", "vpa": vpa}, headers)


def pay_card(api, order_id: str, headers: dict | None = None, **card_fields):
    return post_payment(api, order_id, {"method": "card", "card": card(**card_fields)}, headers)


def error_of(result) -> tuple[int, str, str]:
    """(status, code, description) of an error answer, after checking the envelope."""
    body = result.json
    assert set(body) == {"error"}, body
    assert {"code", "description"} <= set(body["error"]), body
    assert body["error"]["request_id"] == result.headers["Request-Id"]
    return result.status_code, body["error"]["code"], body["error"]["description"]


def count(ctx, table: str) -> int:
    with ctx.db.connection() as conn:
        return conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]
