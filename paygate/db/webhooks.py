"""Webhook logs: the outbox rows and their delivery state machine.

A worker *claims* a due delivery by setting ``locked_until`` (a lease); the lease value it got
back is its token. The attempt's outcome is recorded only while that token still holds, so an
attempt that lost its lease (a manual retry reset the row meanwhile, or the lease ran out and
another worker took over) changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from ..types import WebhookAttempt, WebhookLog
from .outbox import events_cte
from .rows import attempt_from_row, webhook_log_from_row

# What the list shows (no bodies: a page of logs stays small).
LIST_COLUMNS = (
    "id, merchant_id, event, resource_id, status, attempts, last_attempt_at, next_retry_at, "
    "response_code, created_at, updated_at"
)
COLUMNS = f"{LIST_COLUMNS}, body, response_body"


def claim(conn: psycopg.Connection, log_id: str, lease_seconds: float) -> dict | None:
    """Take a due, unleased delivery with the merchant's current URL and secret (and, during a
    rotation's overlap window, the previous secret; else None), all as stored; None if it is
    not ours to do (done, not due yet, or leased by another worker)."""
    return conn.execute(
        """WITH claimed AS (
               UPDATE webhook_logs
                  SET locked_until = now() + make_interval(secs => %s)
                WHERE id = %s AND status = 'pending' AND next_retry_at <= now()
                  AND (locked_until IS NULL OR locked_until < now())
            RETURNING id, merchant_id, event, body, attempts, locked_until
           )
           SELECT c.*, m.webhook_url, m.webhook_secret,
                  CASE WHEN m.previous_webhook_secret_until > now()
                       THEN m.previous_webhook_secret END AS previous_webhook_secret
             FROM claimed c JOIN merchants m ON m.id = c.merchant_id""",
        (lease_seconds, log_id),
    ).fetchone()


RECORD = """
WITH updated AS (
    UPDATE webhook_logs
       SET attempts = %(attempt)s,
           last_attempt_at = now(),
           response_code = %(response_code)s,
           response_body = %(response_body)s,
           status = CASE WHEN %(ok)s THEN 'success'
                         WHEN %(next_delay)s::float8 IS NULL THEN 'failed'
                         ELSE 'pending' END,
           next_retry_at = CASE WHEN %(ok)s OR %(next_delay)s::float8 IS NULL THEN NULL
                                ELSE now() + make_interval(secs => %(next_delay)s) END,
           locked_until = NULL, enqueued_at = NULL, updated_at = now()
     WHERE id = %(id)s AND status = 'pending' AND locked_until = %(lease)s
 RETURNING id, status, attempts, next_retry_at
), attempt AS (
    INSERT INTO webhook_attempts (webhook_log_id, attempt, url, response_code, response_body,
                                  error, duration_ms)
    SELECT id, %(attempt)s, %(url)s, %(response_code)s, %(response_body)s, %(error)s,
           %(duration_ms)s
      FROM updated
)
SELECT * FROM updated
"""


def record_attempt(conn: psycopg.Connection, params: dict[str, Any]) -> dict | None:
    """Write one attempt's outcome and the schedule that follows from it, in one statement.

    ``params``: id, lease (the claim's ``locked_until``), attempt, url, ok, response_code,
    response_body, error, duration_ms, next_delay (seconds until the next attempt, or None when
    there is none). Returns None when the lease was lost: nothing is written then.
    """
    return conn.execute(RECORD, params).fetchone()


def abandon_without_url(conn: psycopg.Connection, log_id: str, lease: datetime) -> None:
    """The merchant removed its URL after the event was written: nothing can be sent."""
    conn.execute(
        """UPDATE webhook_logs
              SET status = 'failed', next_retry_at = NULL, locked_until = NULL,
                  enqueued_at = NULL, response_body = 'No webhook URL configured',
                  updated_at = now()
            WHERE id = %s AND status = 'pending' AND locked_until = %s""",
        (log_id, lease),
    )


def get(conn: psycopg.Connection, log_id: str, merchant_id: str) -> WebhookLog | None:
    """One of the merchant's logs in full: its payload, last response and every attempt."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM webhook_logs WHERE id = %s AND merchant_id = %s",
        (log_id, merchant_id),
    ).fetchone()
    if row is None:
        return None
    return webhook_log_from_row(row, attempts(conn, [log_id]).get(str(row["id"]), []))


def attempts(conn: psycopg.Connection, log_ids: list) -> dict[str, list[WebhookAttempt]]:
    """Every recorded attempt of these deliveries, in order, by log id."""
    by_log: dict[str, list[WebhookAttempt]] = {}
    if not log_ids:
        return by_log
    rows = conn.execute(
        """SELECT webhook_log_id, attempt, url, response_code, response_body, error,
                  duration_ms, attempted_at
             FROM webhook_attempts WHERE webhook_log_id = ANY(%s)
            ORDER BY webhook_log_id, attempt, id""",
        (log_ids,),
    ).fetchall()
    for row in rows:
        by_log.setdefault(str(row["webhook_log_id"]), []).append(attempt_from_row(row))
    return by_log


def for_resources(
    conn: psycopg.Connection, merchant_id: str, resource_ids: list[str]
) -> list[WebhookLog]:
    """The deliveries of these resources (a payment and its refunds), oldest first, each with
    its attempts."""
    rows = conn.execute(
        f"""SELECT {LIST_COLUMNS} FROM webhook_logs
             WHERE merchant_id = %s AND resource_id = ANY(%s)
             ORDER BY created_at, id""",
        (merchant_id, resource_ids),
    ).fetchall()
    by_log = attempts(conn, [row["id"] for row in rows])
    return [webhook_log_from_row(row, by_log.get(str(row["id"]), [])) for row in rows]


def list_for_merchant(
    conn: psycopg.Connection,
    merchant_id: str,
    *,
    limit: int,
    offset: int,
    resource_id: str | None = None,
) -> tuple[list[WebhookLog], int]:
    """One page of a merchant's logs, newest first, and the total count."""
    where = "merchant_id = %(merchant_id)s"
    if resource_id is not None:
        where += " AND resource_id = %(resource_id)s"
    params = {
        "merchant_id": merchant_id,
        "limit": limit,
        "offset": offset,
        "resource_id": resource_id,
    }
    rows = conn.execute(
        f"""SELECT {LIST_COLUMNS}, count(*) OVER () AS total_count FROM webhook_logs
             WHERE {where}
             ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    ).fetchall()
    if rows:
        return [webhook_log_from_row(row) for row in rows], rows[0]["total_count"]
    total = conn.execute(f"SELECT count(*) AS n FROM webhook_logs WHERE {where}", params)
    return [], total.fetchone()["n"]


def reset_for_retry(conn: psycopg.Connection, log_id: str, merchant_id: str) -> dict | None:
    """Manual retry: attempts start again from zero and the delivery is due now. Any attempt
    still in flight loses its lease, so its outcome is not recorded over the reset."""
    return conn.execute(
        f"""UPDATE webhook_logs
               SET status = 'pending', attempts = 0, next_retry_at = now(), locked_until = NULL,
                   enqueued_at = now(), updated_at = now()
             WHERE id = %s AND merchant_id = %s
         RETURNING {LIST_COLUMNS}""",
        (log_id, merchant_id),
    ).fetchone()


def insert_event(conn: psycopg.Connection, params: dict[str, Any]) -> list:
    """Write events that no state change causes (``webhook.test``); return the new log ids
    (none when the merchant has no webhook URL)."""
    row = conn.execute(
        f"""WITH {events_cte()}
            SELECT coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids""",
        params,
    ).fetchone()
    return row["webhook_ids"]
