"""Dashboard records: the stored session-signing key, and a payment's timeline facts."""

from __future__ import annotations

from typing import Any

import psycopg


def secret(conn: psycopg.Connection, name: str, candidate: str) -> str:
    """The stored secret ``name``; ``candidate`` becomes it when none exists yet (first wins)."""
    conn.execute(
        "INSERT INTO dashboard_secrets (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (name, candidate),
    )
    row = conn.execute("SELECT value FROM dashboard_secrets WHERE name = %s", (name,)).fetchone()
    return row["value"]


def sign_in_failures(conn: psycopg.Connection, email: str, window_seconds: float) -> int:
    """Failed sign-ins for ``email`` in the current window."""
    row = conn.execute(
        """SELECT failures FROM dashboard_sign_in_failures
            WHERE email = lower(%s) AND window_start > now() - make_interval(secs => %s)""",
        (email, window_seconds),
    ).fetchone()
    return row["failures"] if row else 0


def record_sign_in_failure(conn: psycopg.Connection, email: str, window_seconds: float) -> None:
    """Count one failure (a new window once the old one is over); forget long-gone windows."""
    conn.execute(
        """WITH gone AS (
               DELETE FROM dashboard_sign_in_failures
                WHERE window_start < now() - make_interval(secs => %(window)s * 4)
           )
           INSERT INTO dashboard_sign_in_failures AS f (email, failures)
           VALUES (lower(%(email)s), 1)
           ON CONFLICT (email) DO UPDATE
              SET failures = CASE WHEN f.window_start > now() - make_interval(secs => %(window)s)
                                  THEN f.failures + 1 ELSE 1 END,
                  window_start = CASE
                      WHEN f.window_start > now() - make_interval(secs => %(window)s)
                      THEN f.window_start ELSE now() END""",
        {"email": email, "window": window_seconds},
    )


def clear_sign_in_failures(conn: psycopg.Connection, email: str) -> None:
    conn.execute("DELETE FROM dashboard_sign_in_failures WHERE email = lower(%s)", (email,))


def payment_moments(conn: psycopg.Connection, payment_id: str, merchant_id: str) -> dict | None:
    """When the payment settled and was captured (columns the public view leaves out)."""
    return conn.execute(
        """SELECT created_at, settled_at, captured_at, updated_at FROM payments
            WHERE id = %s AND merchant_id = %s""",
        (payment_id, merchant_id),
    ).fetchone()


def deliveries_for(
    conn: psycopg.Connection, merchant_id: str, resource_ids: list[str]
) -> list[dict[str, Any]]:
    """Webhook logs of these resources (a payment and its refunds), oldest first."""
    return conn.execute(
        """SELECT id, event, resource_id, status, attempts, last_attempt_at, next_retry_at,
                  response_code, created_at
             FROM webhook_logs
            WHERE merchant_id = %s AND resource_id = ANY(%s)
            ORDER BY created_at, id""",
        (merchant_id, resource_ids),
    ).fetchall()


def attempts_for(conn: psycopg.Connection, log_ids: list) -> list[dict[str, Any]]:
    """Every recorded attempt of these deliveries, in order."""
    if not log_ids:
        return []
    return conn.execute(
        """SELECT webhook_log_id, attempt, url, response_code, error, duration_ms, attempted_at
             FROM webhook_attempts WHERE webhook_log_id = ANY(%s)
            ORDER BY webhook_log_id, attempt, id""",
        (log_ids,),
    ).fetchall()
