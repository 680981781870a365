"""Input rules of CONTRACT.md section 2: amounts, orders, payment bodies, VPAs, list queries.

Pure functions over parsed JSON. Each failure raises ``ValidationFailed`` with the contract's code
and a message that names the field. The card rules live in ``cards`` and are re-exported here.
Strings that reach SQL are checked for NUL characters, which PostgreSQL refuses.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..errors import (
    AMOUNT_TOO_SMALL,
    BODY_NOT_OBJECT,
    CURRENCY_INVALID,
    FIELD_ABOVE_MAXIMUM,
    FIELD_BELOW_MINIMUM,
    FIELD_HAS_NUL,
    FIELD_NOT_INTEGER,
    FIELD_NOT_MOMENT,
    FIELD_NOT_ONE_OF,
    FIELD_NOT_PAISE,
    FIELD_NOT_SHORT_STRING,
    FIELD_NOT_STRING,
    FIELD_NOT_WITH_METHOD,
    FIELD_OUT_OF_RANGE,
    FIELD_RANGE_REVERSED,
    FIELD_REQUIRED,
    FIELD_TOO_LONG,
    NOTES_KEY_TOO_LONG,
    NOTES_NOT_OBJECT,
    NOTES_NUMBER_TOO_LARGE,
    NOTES_TOO_MANY,
    NOTES_VALUE_TOO_LONG,
    NOTES_VALUE_TYPE,
    UNKNOWN_FIELD,
    VPA_INVALID,
    BadRequest,
    NotFound,
    ValidationFailed,
)
from ..moments import parse_moment
from ..types import MethodDetails
from .cards import (  # noqa: F401  (re-exported: the card rules are part of this module's API)
    card,
    card_network,
    card_number,
    cvv,
    expiry,
    luhn_ok,
)

MIN_AMOUNT = 100
MAX_AMOUNT = 100_000_000_000  # ₹100 crore in paise: anything larger is a bug, not a sale
MAX_RECEIPT = 40
MAX_NOTES = 15
MAX_NOTE_LENGTH = 256
MAX_REASON = 255
MAX_ID_LENGTH = 64  # the id columns' width: nothing longer can exist
MAX_OFFSET = 10_000_000
# Patterns are applied with ``fullmatch``: ``$`` alone would also accept a trailing newline.
VPA_PATTERN = re.compile(r"[a-zA-Z0-9._-]+@[a-zA-Z0-9]+")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
ID_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}")  # also fits UUIDs
INTEGER_PATTERN = re.compile(r"-?[0-9]{1,30}")
METHODS = ("upi", "card")


def require_object(body: Any, what: str = "Request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(BODY_NOT_OBJECT.format(what=what))
    return body


def reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(UNKNOWN_FIELD.format(field=unknown[0]), field=unknown[0])


def optional_string(body: dict[str, Any], name: str, max_length: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(FIELD_NOT_STRING.format(field=name), field=name)
    if len(value) > max_length:
        raise BadRequest(FIELD_TOO_LONG.format(field=name, max_length=max_length), field=name)
    if "\x00" in value:
        raise BadRequest(FIELD_HAS_NUL.format(field=name), field=name)
    return value


def amount(value: Any, *, name: str = "amount", minimum: int = MIN_AMOUNT) -> int:
    """An integer number of paise. Strings, floats and booleans are refused, not coerced."""
    if value is None:
        raise BadRequest(FIELD_REQUIRED.format(field=name), field=name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(FIELD_NOT_PAISE.format(field=name), field=name)
    if value < minimum:
        message = (
            AMOUNT_TOO_SMALL
            if minimum == MIN_AMOUNT and name == "amount"
            else FIELD_BELOW_MINIMUM.format(field=name, minimum=minimum)
        )
        raise BadRequest(message, field=name)
    if value > MAX_AMOUNT:
        raise BadRequest(FIELD_ABOVE_MAXIMUM.format(field=name, maximum=MAX_AMOUNT), field=name)
    return value


def currency(value: Any) -> str:
    if value is None:
        return "INR"
    if not isinstance(value, str) or not CURRENCY_PATTERN.fullmatch(value):
        raise BadRequest(CURRENCY_INVALID, field="currency")
    return value


def notes(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(NOTES_NOT_OBJECT, field="notes")
    if len(value) > MAX_NOTES:
        raise BadRequest(NOTES_TOO_MANY.format(count=MAX_NOTES), field="notes")
    for key, note in value.items():
        if len(key) > MAX_NOTE_LENGTH or "\x00" in key:
            raise BadRequest(
                NOTES_KEY_TOO_LONG.format(max_length=MAX_NOTE_LENGTH),
                field="notes",
            )
        if isinstance(note, str):
            if len(note) > MAX_NOTE_LENGTH or "\x00" in note:
                raise BadRequest(
                    NOTES_VALUE_TOO_LONG.format(max_length=MAX_NOTE_LENGTH),
                    field="notes",
                )
        elif note is not None and not isinstance(note, bool | int):
            raise BadRequest(NOTES_VALUE_TYPE, field="notes")
        elif isinstance(note, int) and not isinstance(note, bool) and abs(note) > MAX_AMOUNT:
            raise BadRequest(NOTES_NUMBER_TOO_LARGE, field="notes")
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
        raise BadRequest(
            FIELD_NOT_ONE_OF.format(field="method", choices=", ".join(METHODS)), field="method"
        )
    return value


def vpa(value: Any) -> str:
    if value is None or value == "":
        raise ValidationFailed("INVALID_VPA", FIELD_REQUIRED.format(field="vpa"), field="vpa")
    if not isinstance(value, str) or len(value) > 255 or not VPA_PATTERN.fullmatch(value):
        raise ValidationFailed("INVALID_VPA", VPA_INVALID, field="vpa")
    return value


def payment_request(body: Any) -> tuple[dict[str, Any], MethodDetails]:
    """Validate a payment body except for the order (the caller checks that one first): the
    fields the record keeps, and the full method details for the processor's ``tokenize``
    (held in memory for that one call, never stored, logged or returned)."""
    body = require_object(body)
    reject_unknown(body, {"order_id", "method", "vpa", "card"})
    chosen = method(body.get("method"))
    details: dict[str, Any] = {
        "method": chosen,
        "vpa": None,
        "card_network": None,
        "card_last4": None,
    }
    # The other method's field is refused rather than ignored: it is a client mistake.
    if chosen == "upi":
        if body.get("card") is not None:
            raise BadRequest(FIELD_NOT_WITH_METHOD.format(field="card", method="upi"), field="card")
        details["vpa"] = vpa(body.get("vpa"))
        return details, MethodDetails(method="upi", vpa=details["vpa"])
    if body.get("vpa") not in (None, ""):
        raise BadRequest(FIELD_NOT_WITH_METHOD.format(field="vpa", method="card"), field="vpa")
    full = card(body.get("card"))
    details["card_network"] = full.network
    details["card_last4"] = full.last4
    return details, MethodDetails(method="card", card=full)


def plausible_id(value: Any) -> bool:
    """Could ``value`` be one of our ids? Anything else cannot exist (and must not reach SQL:
    PostgreSQL refuses NUL characters, which would otherwise be a 500)."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def order_id_of(body: Any) -> str:
    """The body's ``order_id``: 400 when missing, 404 when it cannot name an order."""
    body = require_object(body)
    value = body.get("order_id")
    if value is None or value == "":
        raise BadRequest(FIELD_REQUIRED.format(field="order_id"), field="order_id")
    if not isinstance(value, str):
        raise BadRequest(FIELD_NOT_STRING.format(field="order_id"), field="order_id")
    if not plausible_id(value):
        raise NotFound.of("Order")
    return value


def _integer_param(raw: Any, name: str, default: int) -> int:
    """A query parameter that must be a plain decimal integer (no ``1_0``, ``+5`` or `` 5``)."""
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise BadRequest(FIELD_NOT_INTEGER.format(field=name), field=name)
    text = str(raw)
    if not INTEGER_PATTERN.fullmatch(text):
        raise BadRequest(FIELD_NOT_INTEGER.format(field=name), field=name)
    return int(text)


def pagination(
    limit: Any, offset: Any, *, default_limit: int = 10, max_limit: int = 100
) -> tuple[int, int]:
    """``(limit, offset)``: limit 1..max_limit (default 10), offset 0..MAX_OFFSET (default 0)."""
    lim = _integer_param(limit, "limit", default_limit)
    if lim < 1 or lim > max_limit:
        raise BadRequest(
            FIELD_OUT_OF_RANGE.format(field="limit", low=1, high=max_limit), field="limit"
        )
    off = _integer_param(offset, "offset", 0)
    if off < 0 or off > MAX_OFFSET:
        raise BadRequest(
            FIELD_OUT_OF_RANGE.format(field="offset", low=0, high=MAX_OFFSET), field="offset"
        )
    return lim, off


def _moment(raw: Any, name: str) -> datetime | None:
    """Unix seconds or an ISO-8601 date/time (UTC when no offset is given)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_ID_LENGTH:
        raise BadRequest(FIELD_NOT_MOMENT.format(field=name), field=name)
    try:
        return parse_moment(raw)
    except ValueError:
        raise BadRequest(FIELD_NOT_MOMENT.format(field=name), field=name) from None


PAYMENT_STATUSES = ("pending", "success", "failed")


LAST4 = re.compile(r"\d{4}")


def payment_filters(params: dict[str, Any]) -> dict[str, Any]:
    """Filters of ``GET /api/v1/payments`` (and the dashboard's list and CSV export): status,
    method, order_id, from, to, amount_min, amount_max (paise, inclusive) and search.

    ``search`` is read by its shape (docs/api.md): four digits are a card's last 4 (equal);
    a text with ``@`` is part of a VPA (case-insensitive); a refund id (``rfnd_...``) finds the
    payment it refunds; anything else is part of a payment or order id (case-insensitive)."""
    filters: dict[str, Any] = {}
    status = params.get("status")
    if status is not None and status not in PAYMENT_STATUSES:
        raise BadRequest(
            FIELD_NOT_ONE_OF.format(field="status", choices=", ".join(PAYMENT_STATUSES)),
            field="status",
        )
    method_value = params.get("method")
    if method_value is not None and method_value not in METHODS:
        raise BadRequest(
            FIELD_NOT_ONE_OF.format(field="method", choices=", ".join(METHODS)), field="method"
        )
    for name in ("order_id", "search"):
        value = params.get(name) or None
        if value is not None and (
            not isinstance(value, str) or len(value) > MAX_ID_LENGTH or "\x00" in value
        ):
            raise BadRequest(
                FIELD_NOT_SHORT_STRING.format(field=name, max_length=MAX_ID_LENGTH), field=name
            )
        filters[name] = value
    filters.update(_search_filter(filters.pop("search")))
    filters["status"] = status
    filters["method"] = method_value
    filters["created_from"] = _moment(params.get("from"), "from")
    filters["created_to"] = _moment(params.get("to"), "to")
    low = _amount_param(params.get("amount_min"), "amount_min")
    high = _amount_param(params.get("amount_max"), "amount_max")
    if low is not None and high is not None and low > high:
        raise BadRequest(
            FIELD_RANGE_REVERSED.format(low="amount_min", high="amount_max"), field="amount_min"
        )
    filters["amount_min"] = low
    filters["amount_max"] = high
    return filters


def _search_filter(search: str | None) -> dict[str, str]:
    """``search`` as the one filter its shape names (see ``payment_filters``)."""
    if search is None:
        return {}
    text = search.strip()
    if not text:
        return {}
    if LAST4.fullmatch(text):
        return {"card_last4": text}
    if "@" in text:
        return {"vpa_contains": text}
    if text.startswith("rfnd_"):
        return {"refund_id": text}
    return {"search": text}


def _amount_param(raw: Any, name: str) -> int | None:
    """An amount bound in paise: a plain decimal integer from 0 to ``MAX_AMOUNT``."""
    if raw is None:
        return None
    value = _integer_param(raw, name, 0)
    if value < 0 or value > MAX_AMOUNT:
        raise BadRequest(FIELD_OUT_OF_RANGE.format(field=name, low=0, high=MAX_AMOUNT), field=name)
    return value
