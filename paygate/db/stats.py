"""Dashboard statistics: a merchant's payment totals and its payments per day, in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


def _window(since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """The created_at bounds (``since`` inclusive, ``until`` exclusive) as SQL and values."""
    clause, values = "", []
    if since is not None:
        clause += " AND created_at >= %s"
        values.append(since)
    if until is not None:
        clause += " AND created_at < %s"
        values.append(until)
    return clause, values


def totals(
    conn: psycopg.Connection,
    merchant_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """One row per currency: payments by status, successful volume, refunded amount, the
    first payment's moment; of payments created in [``since``, ``until``) when given."""
    window, values = _window(since, until)
    return conn.execute(
        f"""SELECT currency,
                  count(*) AS total,
                  count(*) FILTER (WHERE status = 'success') AS successful,
                  count(*) FILTER (WHERE status = 'failed') AS failed,
                  count(*) FILTER (WHERE status = 'pending') AS pending,
                  coalesce(sum(amount) FILTER (WHERE status = 'success'), 0)::bigint AS volume,
                  coalesce(sum(amount_refunded), 0)::bigint AS refunded,
                  min(created_at) AS first_at
             FROM payments
            WHERE merchant_id = %s{window}
            GROUP BY currency
            ORDER BY currency""",
        (merchant_id, *values),
    ).fetchall()


def daily(
    conn: psycopg.Connection,
    merchant_id: str,
    since: datetime,
    currency: str,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Payments per UTC day and status since ``since`` (until ``until``, exclusive, when
    given), with the successful volume in ``currency``. Days without payments are absent (the
    caller fills them)."""
    window, values = _window(since, until)
    return conn.execute(
        f"""SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
                  status,
                  count(*) AS payments,
                  coalesce(sum(amount) FILTER (WHERE currency = %s), 0)::bigint AS volume
             FROM payments
            WHERE merchant_id = %s{window}
            GROUP BY 1, 2
            ORDER BY 1, 2""",
        (currency, merchant_id, *values),
    ).fetchall()
