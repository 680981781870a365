"""How both web apps show money and moments to people (the API's wire format is
``paygate.services.views``)."""

from __future__ import annotations

from datetime import UTC, datetime

from paygate.services.views import iso as wire_iso
from paygate.types import Money


def money(amount: int | None, currency: str | None = "INR") -> str:
    """``₹1,234.00`` for 123400 paise (``Money``'s format, the only one)."""
    return str(Money(int(amount or 0), currency or "INR"))


def timestamp(moment: datetime | None) -> str:
    """``2024-01-15 10:31:00`` in UTC, or an em dash for nothing."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(moment: datetime | None) -> str:
    """``2024-01-15T10:31:00Z`` for a ``<time datetime>`` attribute; empty for nothing."""
    return wire_iso(moment) or ""
