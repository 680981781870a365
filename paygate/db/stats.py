"""Dashboard statistics: a merchant's payment totals and its payments per day, in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


def totals(conn: psycopg.Connection, merchant_id: str) -> list[dict[str, Any]]:
    """One row per currency: payments by status, successful volume, refunded amount."""
    return conn.execute(
        """SELECT currency,
                  count(*) AS total,
                  count(*) FILTER (WHERE status = 'success') AS successful,
                  count(*) FILTER (WHERE status = 'failed') AS failed,
                  count(*) FILTER (WHERE status = 'pending') AS pending,
                  coalesce(sum(amount) FILTER (WHERE status = 'success'), 0)::bigint AS volume,
                  coalesce(sum(amount_refunded), 0)::bigint AS refunded
             FROM payments
            WHERE merchant_id = %s
            GROUP BY currency
            ORDER BY currency""",
        (merchant_id,),
    ).fetchall()


def daily(
    conn: psycopg.Connection, merchant_id: str, since: datetime, currency: str
) -> list[dict[str, Any]]:
    """Payments per UTC day and status since ``since``, with the successful volume in
    ``currency``. Days without payments are absent (the caller fills them)."""
    return conn.execute(
        """SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
                  status,
                  count(*) AS payments,
                  coalesce(sum(amount) FILTER (WHERE currency = %s), 0)::bigint AS volume
             FROM payments
            WHERE merchant_id = %s AND created_at >= %s
            GROUP BY 1, 2
            ORDER BY 1, 2""",
        (currency, merchant_id, since),
    ).fetchall()
