"""Webhook logs: the outbox rows and their delivery state machine."""

from __future__ import annotations

from typing import Any

import psycopg

from .outbox import events_cte

COLUMNS = (
    "id, merchant_id, event, resource_id, payload, status, attempts, last_attempt_at, "
    "next_retry_at, response_code, response_body, created_at, updated_at"
)


def claim(conn: psycopg.Connection, log_id: str, lease_seconds: float) -> dict | None:
    """Take a due delivery, with the merchant's current URL and secret; None if not ours to do."""
    return conn.execute(
        """WITH claimed AS (
               UPDATE webhook_logs
                  SET locked_until = now() + make_interval(secs => %s)
                WHERE id = %s AND status = 'pending' AND next_retry_at <= now()
                  AND (locked_until IS NULL OR locked_until < now())
            RETURNING id, merchant_id, event, body, attempts
           )
           SELECT c.*, m.webhook_url, m.webhook_secret
             FROM claimed c JOIN merchants m ON m.id = c.merchant_id""",
        (lease_seconds, log_id),
    ).fetchone()


def record_attempt(conn: psycopg.Connection, params: dict[str, Any]) -> dict | None:
    """Write one attempt's outcome and the schedule that follows from it, in one statement.

    ``params``: id, attempt, url, ok, response_code, response_body, error, duration_ms,
    next_delay (seconds until the next attempt, or None when there is none).
    """
    return conn.execute(
        """WITH attempt AS (
               INSERT INTO webhook_attempts (webhook_log_id, attempt, url, response_code,
                                             response_body, error, duration_ms)
               VALUES (%(id)s, %(attempt)s, %(url)s, %(response_code)s, %(response_body)s,
                       %(error)s, %(duration_ms)s)
           )
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
            WHERE id = %(id)s AND status = 'pending'
        RETURNING id, status, attempts, next_retry_at""",
        params,
    ).fetchone()


def release(conn: psycopg.Connection, log_id: str) -> None:
    conn.execute(
        "UPDATE webhook_logs SET locked_until = NULL WHERE id = %s AND status = 'pending'",
        (log_id,),
    )


def abandon_without_url(conn: psycopg.Connection, log_id: str) -> None:
    """The merchant removed its URL after the event was written: nothing can be sent."""
    conn.execute(
        """UPDATE webhook_logs
              SET status = 'failed', next_retry_at = NULL, locked_until = NULL,
                  response_body = 'No webhook URL configured', updated_at = now()
            WHERE id = %s AND status = 'pending'""",
        (log_id,),
    )


def get(conn: psycopg.Connection, log_id: str, merchant_id: str) -> dict | None:
    return conn.execute(
        f"SELECT {COLUMNS} FROM webhook_logs WHERE id = %s AND merchant_id = %s",
        (log_id, merchant_id),
    ).fetchone()


def attempts(conn: psycopg.Connection, log_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT attempt, url, response_code, response_body, error, duration_ms, attempted_at
             FROM webhook_attempts WHERE webhook_log_id = %s ORDER BY attempt, id""",
        (log_id,),
    ).fetchall()


def list_for_merchant(
    conn: psycopg.Connection,
    merchant_id: str,
    *,
    limit: int,
    offset: int,
    resource_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
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
        f"""SELECT {COLUMNS}, count(*) OVER () AS total_count FROM webhook_logs WHERE {where}
            ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    ).fetchall()
    if rows:
        return rows, rows[0]["total_count"]
    total = conn.execute(f"SELECT count(*) AS n FROM webhook_logs WHERE {where}", params)
    return rows, total.fetchone()["n"]


def reset_for_retry(conn: psycopg.Connection, log_id: str, merchant_id: str) -> dict | None:
    """Manual retry: attempts start again from zero and the delivery is due now."""
    return conn.execute(
        f"""UPDATE webhook_logs
               SET status = 'pending', attempts = 0, next_retry_at = now(), locked_until = NULL,
                   enqueued_at = now(), updated_at = now()
             WHERE id = %s AND merchant_id = %s
         RETURNING {COLUMNS}""",
        (log_id, merchant_id),
    ).fetchone()


def insert_event(conn: psycopg.Connection, params: dict[str, Any]) -> list:
    """Write events that no state change causes (``webhook.test``)."""
    row = conn.execute(
        f"""WITH {events_cte()}
            SELECT coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids""",
        params,
    ).fetchone()
    return row["webhook_ids"]
