"""The transactions page's filter form: its GET fields, and the same filters as
``GET /api/v1/payments`` parameters (the page, its row fragment and the CSV export all list
through those, so each shows exactly what the API lists for them)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from paygate.errors import (
    FILTER_AMOUNT_INVALID,
    FILTER_AMOUNTS_REVERSED,
    FILTER_DATE_INVALID,
    FILTER_DATES_REVERSED,
    BadRequest,
)

from .render import parse_rupees

# The form's fields: search, status, method, from/to (UTC dates, both included), min/max
# (rupees, both included). Values are kept as typed so the form shows them back.
FIELDS = ("q", "status", "method", "from", "to", "min", "max")


def read(req) -> dict[str, str]:
    """The filter fields of the query string, trimmed ("" for an absent one)."""
    return {name: (req.get_param(name) or "").strip()[:100] for name in FIELDS}


def chosen(form: dict[str, str]) -> dict[str, str]:
    """Only the filled-in fields: the query string of a link that keeps the filters."""
    return {name: value for name, value in form.items() if value}


def parse_date(text: str) -> date | None:
    """``YYYY-MM-DD`` (what ``<input type=date>`` sends); None for ""; BadRequest otherwise."""
    if not text:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else _bad_date()
    except ValueError:
        return _bad_date()


def _bad_date():
    raise BadRequest(FILTER_DATE_INVALID)


def _paise(text: str) -> int | None:
    if not text:
        return None
    amount = parse_rupees(text)
    if amount is None:
        raise BadRequest(FILTER_AMOUNT_INVALID)
    return amount


def api_params(form: dict[str, str]) -> dict[str, Any]:
    """The form as ``GET /api/v1/payments`` query parameters: ``search``, ``status``,
    ``method``; ``from`` the first day's midnight and ``to`` the midnight after the last day
    (the API's ``to`` is exclusive); ``amount_min``/``amount_max`` in paise ("500.50" ->
    ``50050``). A field that cannot be read raises BadRequest with a message for people; the
    API's own validation then reads the result like any API request."""
    params: dict[str, Any] = {}
    for field, name in (("q", "search"), ("status", "status"), ("method", "method")):
        if form.get(field):
            params[name] = form[field]
    first, last = parse_date(form.get("from", "")), parse_date(form.get("to", ""))
    if first and last and first > last:
        raise BadRequest(FILTER_DATES_REVERSED)
    if first:
        params["from"] = first.isoformat()
    if last:
        params["to"] = (last + timedelta(days=1)).isoformat()
    low, high = _paise(form.get("min", "")), _paise(form.get("max", ""))
    if low is not None and high is not None and low > high:
        raise BadRequest(FILTER_AMOUNTS_REVERSED)
    if low is not None:
        params["amount_min"] = str(low)
    if high is not None:
        params["amount_max"] = str(high)
    return params
