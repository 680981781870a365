"""Input rules of CONTRACT.md section 2: amounts, orders, VPAs, cards, expiry, card networks.

Pure functions over parsed JSON. Each failure raises ``ValidationFailed`` with the contract's code
and a message that names the field. Card numbers and CVVs are only ever held in local variables
here; what leaves this module is the network and the last four digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import AMOUNT_TOO_SMALL, BadRequest, ValidationFailed

MIN_AMOUNT = 100
MAX_AMOUNT = 100_000_000_000  # ₹100 crore in paise: anything larger is a bug, not a sale
MAX_RECEIPT = 40
MAX_NOTES = 15
MAX_NOTE_LENGTH = 256
MAX_REASON = 255
VPA_PATTERN = re.compile(r"^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
METHODS = ("upi", "card")


@dataclass(frozen=True)
class CardSummary:
    """All that is kept of a card."""

    network: str
    last4: str


def require_object(body: Any, what: str = "Request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return body


def reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Unknown field: {unknown[0]}", field=unknown[0])


def optional_string(body: dict[str, Any], name: str, max_length: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", field=name)
    if len(value) > max_length:
        raise BadRequest(f"{name} must be at most {max_length} characters", field=name)
    if "\x00" in value:
        raise BadRequest(f"{name} must not contain NUL characters", field=name)
    return value


def required_string(body: dict[str, Any], name: str, max_length: int = 255) -> str:
    value = optional_string(body, name, max_length)
    if value is None or value == "":
        raise BadRequest(f"{name} is required", field=name)
    return value


def amount(value: Any, *, name: str = "amount", minimum: int = MIN_AMOUNT) -> int:
    """An integer number of paise. Strings, floats and booleans are refused, not coerced."""
    if value is None:
        raise BadRequest(f"{name} is required", field=name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be an integer number of paise", field=name)
    if value < minimum:
        message = (
            AMOUNT_TOO_SMALL
            if minimum == MIN_AMOUNT and name == "amount"
            else (f"{name} must be at least {minimum}")
        )
        raise BadRequest(message, field=name)
    if value > MAX_AMOUNT:
        raise BadRequest(f"{name} must be at most {MAX_AMOUNT}", field=name)
    return value


def currency(value: Any) -> str:
    if value is None:
        return "INR"
    if not isinstance(value, str) or not CURRENCY_PATTERN.match(value):
        raise BadRequest(
            "currency must be a three-letter ISO 4217 code such as INR", field="currency"
        )
    return value


def notes(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("notes must be an object of key-value pairs", field="notes")
    if len(value) > MAX_NOTES:
        raise BadRequest(f"notes can have at most {MAX_NOTES} keys", field="notes")
    for key, note in value.items():
        if len(key) > MAX_NOTE_LENGTH or "\x00" in key:
            raise BadRequest(
                f"notes keys must be at most {MAX_NOTE_LENGTH} characters", field="notes"
            )
        if isinstance(note, str):
            if len(note) > MAX_NOTE_LENGTH or "\x00" in note:
                raise BadRequest(
                    f"notes values must be at most {MAX_NOTE_LENGTH} characters", field="notes"
                )
        elif note is not None and not isinstance(note, bool | int):
            raise BadRequest("notes values must be strings, numbers or booleans", field="notes")
        elif isinstance(note, int) and not isinstance(note, bool) and abs(note) > MAX_AMOUNT:
            raise BadRequest("notes numbers are too large", field="notes")
    return value


def order_request(body: Any) -> dict[str, Any]:
    body = require_object(body)
    reject_unknown(body, {"amount", "currency", "receipt", "notes"})
    return {
        "amount": amount(body.get("amount")),
        "currency": currency(body.get("currency")),
        "receipt": optional_string(body, "receipt", MAX_RECEIPT),
        "notes": notes(body.get("notes")),
    }


# -- payment methods --------------------------------------------------------------------------


def method(value: Any) -> str:
    if value not in METHODS:
        raise BadRequest("method must be one of: upi, card", field="method")
    return value


def vpa(value: Any) -> str:
    if value is None or value == "":
        raise ValidationFailed("INVALID_VPA", "vpa is required", field="vpa")
    if not isinstance(value, str) or len(value) > 255 or not VPA_PATTERN.match(value):
        raise ValidationFailed("INVALID_VPA", "Invalid VPA format", field="vpa")
    return value


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_network(digits: str) -> str:
    """CONTRACT.md section 2, checked in this order."""
    if digits.startswith("4"):
        return "visa"
    two = digits[:2]
    if "51" <= two <= "55":
        return "mastercard"
    if two in ("34", "37"):
        return "amex"
    if two in ("60", "65") or "81" <= two <= "89":
        return "rupay"
    return "unknown"


def card_number(value: Any) -> str:
    """The cleaned digits of a valid card number (kept local by callers, never stored)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationFailed("INVALID_CARD", "Invalid card number", field="card.number")
    digits = value.replace(" ", "").replace("-", "")
    if not (13 <= len(digits) <= 19) or not digits.isascii() or not digits.isdigit():
        raise ValidationFailed("INVALID_CARD", "Invalid card number", field="card.number")
    if not luhn_ok(digits):
        raise ValidationFailed("INVALID_CARD", "Invalid card number", field="card.number")
    return digits


def _expiry_part(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def expiry(month: Any, year: Any, *, today: datetime | None = None) -> tuple[int, int]:
    """(month, four-digit year) of a card still valid this month."""
    today = today or datetime.now(UTC)
    m, y = _expiry_part(month), _expiry_part(year)
    if m is None or y is None or not 1 <= m <= 12:
        raise ValidationFailed("EXPIRED_CARD", "Invalid card expiry date", field="card.expiry")
    if y < 100:
        y += 2000
    if y > today.year + 50:
        raise ValidationFailed("EXPIRED_CARD", "Invalid card expiry date", field="card.expiry")
    if (y, m) < (today.year, today.month):
        raise ValidationFailed("EXPIRED_CARD", "Card has expired", field="card.expiry")
    return m, y


def cvv(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if (
        not isinstance(value, str)
        or not value.isascii()
        or not value.isdigit()
        or not (3 <= len(value) <= 4)
    ):
        raise BadRequest("cvv must be 3 or 4 digits", field="card.cvv")


def card(value: Any, *, today: datetime | None = None) -> CardSummary:
    if not isinstance(value, dict):
        raise BadRequest("card details are required for method card", field="card")
    reject_unknown(value, {"number", "expiry_month", "expiry_year", "cvv", "holder_name"})
    digits = card_number(value.get("number"))
    expiry(value.get("expiry_month"), value.get("expiry_year"), today=today)
    cvv(value.get("cvv"))
    holder = value.get("holder_name")
    if holder is not None and (not isinstance(holder, str) or len(holder) > 255):
        raise BadRequest(
            "holder_name must be a string of at most 255 characters", field="card.holder_name"
        )
    return CardSummary(network=card_network(digits), last4=digits[-4:])


def payment_request(body: Any) -> dict[str, Any]:
    """Validate a payment body except for the order (the caller checks that one first)."""
    body = require_object(body)
    reject_unknown(body, {"order_id", "method", "vpa", "card"})
    chosen = method(body.get("method"))
    details: dict[str, Any] = {
        "method": chosen,
        "vpa": None,
        "card_network": None,
        "card_last4": None,
    }
    if chosen == "upi":
        details["vpa"] = vpa(body.get("vpa"))
    else:
        summary = card(body.get("card"))
        details["card_network"] = summary.network
        details["card_last4"] = summary.last4
    return details


def order_id_of(body: Any) -> str:
    body = require_object(body)
    value = body.get("order_id")
    if not isinstance(value, str) or not value:
        raise BadRequest("order_id is required", field="order_id")
    if len(value) > 64:
        raise BadRequest("order_id is too long", field="order_id")
    return value


def pagination(limit: Any, offset: Any, *, default_limit: int = 10, max_limit: int = 100):
    def parse(raw: Any, name: str, default: int) -> int:
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise BadRequest(f"{name} must be an integer", field=name) from None
        if value < 0:
            raise BadRequest(f"{name} must not be negative", field=name)
        return value

    lim = parse(limit, "limit", default_limit)
    if lim < 1 or lim > max_limit:
        raise BadRequest(f"limit must be between 1 and {max_limit}", field="limit")
    off = parse(offset, "offset", 0)
    if off > 10_000_000:
        raise BadRequest("offset is too large", field="offset")
    return lim, off


def _moment(raw: Any, name: str) -> datetime | None:
    """Unix seconds or an ISO-8601 date/time (UTC when no offset is given)."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f"{name} must be unix seconds or an ISO-8601 date", field=name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


PAYMENT_STATUSES = ("pending", "success", "failed")


def payment_filters(params: dict[str, Any]) -> dict[str, Any]:
    """Filters of ``GET /api/v1/payments``: status, method, order_id, from, to, search."""
    filters: dict[str, Any] = {}
    status = params.get("status") or None
    if status is not None and status not in PAYMENT_STATUSES:
        raise BadRequest("status must be one of: pending, success, failed", field="status")
    method_value = params.get("method") or None
    if method_value is not None and method_value not in METHODS:
        raise BadRequest("method must be one of: upi, card", field="method")
    for name in ("order_id", "search"):
        value = params.get(name) or None
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            raise BadRequest(f"{name} must be at most 64 characters", field=name)
        filters[name] = value
    filters["status"] = status
    filters["method"] = method_value
    filters["created_from"] = _moment(params.get("from"), "from")
    filters["created_to"] = _moment(params.get("to"), "to")
    return filters
