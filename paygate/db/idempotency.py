"""Idempotency keys: one row per (merchant, key), claimed by INSERT so races cannot slip through.

A request claims its key with an ``in_flight`` row in its own short transaction; the statement
that creates the object completes the row (status, response) atomically with the object. An
``in_flight`` row older than ``STALE_AFTER`` belongs to a request that died and may be retaken.
The ``request_hash`` column holds the request's fingerprint (``services.idempotency.fingerprint``:
the operation's name, its target and the body), so a repeat can be told from a reuse.
"""

from __future__ import annotations

import psycopg

STALE_AFTER_SECONDS = 60

# A CTE for creating statements: completes the key's row (``idem_key`` NULL matches nothing).
COMPLETE_CTE = """idem AS (
    UPDATE idempotency_keys
       SET status = 'complete', response_code = %(idem_code)s, response_body = %(idem_body)s
     WHERE merchant_id = %(merchant_id)s AND key = %(idem_key)s AND status = 'in_flight'
)"""


def claim(conn: psycopg.Connection, merchant_id: str, key: str, fingerprint: str) -> dict | None:
    """Insert an in-flight row; return None when we own the key now, else the existing row."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM idempotency_keys WHERE merchant_id = %s AND key = %s"
            " AND (expires_at < now() OR (status = 'in_flight'"
            "      AND created_at < now() - make_interval(secs => %s)))",
            (merchant_id, key, STALE_AFTER_SECONDS),
        )
        inserted = conn.execute(
            """INSERT INTO idempotency_keys (merchant_id, key, request_hash)
               VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING key""",
            (merchant_id, key, fingerprint),
        ).fetchone()
        if inserted:
            return None
        return conn.execute(
            """SELECT request_hash, status, response_code, response_body FROM idempotency_keys
                WHERE merchant_id = %s AND key = %s""",
            (merchant_id, key),
        ).fetchone() or {"status": "in_flight", "request_hash": fingerprint}


def release(conn: psycopg.Connection, merchant_id: str, key: str) -> None:
    """The request failed: errors are not stored, the key may be used again."""
    conn.execute(
        "DELETE FROM idempotency_keys WHERE merchant_id = %s AND key = %s AND status = 'in_flight'",
        (merchant_id, key),
    )


def purge_expired(conn: psycopg.Connection) -> int:
    return conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()").rowcount
