"""Reading a moment as the API's ``from``/``to`` take it: unix seconds, or an ISO-8601 date or
date-time (UTC when no offset is given). One reader for the API's validation and the CLI's
arguments, so both accept exactly the same texts."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_moment(text: str) -> datetime:
    """The moment ``text`` names, timezone-aware; ``ValueError`` for anything else (including
    out-of-range seconds)."""
    value = text.strip()
    try:
        if value.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (OverflowError, OSError) as exc:
        raise ValueError(text) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
