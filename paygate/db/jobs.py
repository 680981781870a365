"""Job statistics from the record: what is waiting, running, done and failed, over all kinds."""

from __future__ import annotations

import psycopg

COUNTS = """
SELECT
  (SELECT count(*) FROM payments
    WHERE status = 'pending' AND (locked_until IS NULL OR locked_until < now()))
  + (SELECT count(*) FROM refunds
    WHERE status = 'pending' AND (locked_until IS NULL OR locked_until < now()))
  + (SELECT count(*) FROM webhook_logs
    WHERE status = 'pending' AND (locked_until IS NULL OR locked_until < now()))  AS pending,
  (SELECT count(*) FROM payments WHERE status = 'pending' AND locked_until >= now())
  + (SELECT count(*) FROM refunds WHERE status = 'pending' AND locked_until >= now())
  + (SELECT count(*) FROM webhook_logs
    WHERE status = 'pending' AND locked_until >= now())                           AS processing,
  (SELECT count(*) FROM payments WHERE status IN ('success', 'failed'))
  + (SELECT count(*) FROM refunds WHERE status = 'processed')
  + (SELECT count(*) FROM webhook_logs WHERE status = 'success')                  AS completed,
  (SELECT count(*) FROM refunds WHERE status = 'failed')
  + (SELECT count(*) FROM webhook_logs WHERE status = 'failed')                   AS failed
"""


def counts(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute(COUNTS).fetchone()
    return {key: int(value) for key, value in row.items()}
