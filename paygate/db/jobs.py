"""Job statistics from the record: what is waiting, running, done and failed, over all kinds.

A job is a payment or refund to settle, or a webhook delivery. ``pending``: waiting for a
worker, including retries scheduled for later; ``processing``: a worker holds a live lease on
it; ``completed``: finished (a declined payment is a finished job, as is a delivered webhook);
``failed``: given up (a refund the processor refused, a delivery out of attempts).
"""

from __future__ import annotations

import psycopg

LEASED = "locked_until IS NOT NULL AND locked_until >= now()"

COUNTS = f"""
WITH jobs AS (
    SELECT status, status = 'pending' AND {LEASED} AS leased,
           status IN ('success', 'failed') AS done, FALSE AS gave_up
      FROM payments
    UNION ALL
    SELECT status, status = 'pending' AND {LEASED}, status = 'processed', status = 'failed'
      FROM refunds
    UNION ALL
    SELECT status, status = 'pending' AND {LEASED}, status = 'success', status = 'failed'
      FROM webhook_logs
)
SELECT count(*) FILTER (WHERE status = 'pending' AND NOT leased) AS pending,
       count(*) FILTER (WHERE leased)                            AS processing,
       count(*) FILTER (WHERE done)                              AS completed,
       count(*) FILTER (WHERE gave_up)                           AS failed
  FROM jobs
"""


def counts(conn: psycopg.Connection) -> dict[str, int]:
    """``{pending, processing, completed, failed}`` as integers."""
    row = conn.execute(COUNTS).fetchone()
    return {key: int(value) for key, value in row.items()}
