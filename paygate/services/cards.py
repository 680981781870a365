"""Card rules of CONTRACT.md section 2: cleaning, length, Luhn, network, expiry, CVV.

Card numbers and CVVs are only ever held in local variables here and in the ``CardDetails``
``card`` answers (its ``repr`` hides them): the processor's ``tokenize`` gets it, the record
only its network and last four digits. ``validation`` re-exports these names.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..errors import (
    CARD_EXPIRED,
    CARD_EXPIRY_INVALID,
    CARD_NUMBER_INVALID,
    CARD_REQUIRED,
    CVV_INVALID,
    FIELD_NOT_SHORT_STRING,
    UNKNOWN_FIELD,
    BadRequest,
    ValidationFailed,
)
from ..types import CardDetails

MAX_HOLDER_NAME = 255
MAX_NUMBER_LENGTH = 40  # 19 digits with spaces or dashes between every one fits
CARD_FIELDS = {"number", "expiry_month", "expiry_year", "cvv", "holder_name"}
MAX_YEAR = 9999  # the contract sets no upper bound; four digits is what a year can be
MONTH_DIGITS = re.compile(r"[0-9]{1,2}")
YEAR_DIGITS = re.compile(r"[0-9]{2}|[0-9]{4}")


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
    if not isinstance(value, str) or len(value) > MAX_NUMBER_LENGTH:
        raise ValidationFailed("INVALID_CARD", CARD_NUMBER_INVALID, field="card.number")
    digits = value.replace(" ", "").replace("-", "")
    if not (13 <= len(digits) <= 19) or not digits.isascii() or not digits.isdigit():
        raise ValidationFailed("INVALID_CARD", CARD_NUMBER_INVALID, field="card.number")
    if not luhn_ok(digits):
        raise ValidationFailed("INVALID_CARD", CARD_NUMBER_INVALID, field="card.number")
    return digits


def _expiry_part(value: Any, digits: re.Pattern[str]) -> int | None:
    """A JSON integer, or a string of ASCII digits of the allowed lengths."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and digits.fullmatch(value):
        return int(value)
    return None


def expiry(month: Any, year: Any, *, today: datetime | None = None) -> tuple[int, int]:
    """(month, four-digit year) of a card still valid this month. Month 1-12 as ``12``/``"12"``
    /``"01"``; year as ``30``/``"30"`` (+2000) or ``2030``/``"2030"``."""
    today = today or datetime.now(UTC)
    m, y = _expiry_part(month, MONTH_DIGITS), _expiry_part(year, YEAR_DIGITS)
    if m is None or y is None or not 1 <= m <= 12:
        raise ValidationFailed("EXPIRED_CARD", CARD_EXPIRY_INVALID, field="card.expiry")
    if y < 100:
        y += 2000
    if y > MAX_YEAR:
        raise ValidationFailed("EXPIRED_CARD", CARD_EXPIRY_INVALID, field="card.expiry")
    if (y, m) < (today.year, today.month):
        raise ValidationFailed("EXPIRED_CARD", CARD_EXPIRED, field="card.expiry")
    return m, y


def cvv(value: Any) -> None:
    """3 or 4 digits; a JSON number is accepted as its digits (``123``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if (
        not isinstance(value, str)
        or not value.isascii()
        or not value.isdigit()
        or not (3 <= len(value) <= 4)
    ):
        raise BadRequest(CVV_INVALID, field="card.cvv")


def card(value: Any, *, today: datetime | None = None) -> CardDetails:
    if not isinstance(value, dict):
        raise BadRequest(CARD_REQUIRED, field="card")
    unknown = sorted(set(value) - CARD_FIELDS)
    if unknown:
        raise BadRequest(
            UNKNOWN_FIELD.format(field=f"card.{unknown[0]}"), field=f"card.{unknown[0]}"
        )
    digits = card_number(value.get("number"))
    month, year = expiry(value.get("expiry_month"), value.get("expiry_year"), today=today)
    code = value.get("cvv")
    cvv(code)
    holder = value.get("holder_name")
    if holder is not None and (not isinstance(holder, str) or len(holder) > MAX_HOLDER_NAME):
        raise BadRequest(
            FIELD_NOT_SHORT_STRING.format(field="holder_name", max_length=MAX_HOLDER_NAME),
            field="card.holder_name",
        )
    return CardDetails(
        number=digits,
        expiry_month=month,
        expiry_year=year,
        cvv=str(code) if isinstance(code, int) else code,
        holder_name=holder,
        network=card_network(digits),
        last4=digits[-4:],
    )
