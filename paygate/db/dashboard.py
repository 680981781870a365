"""Dashboard records: the stored session-signing key, staff sessions, and a payment's timeline
facts. (Sign-in attempts are counted by the one abuse limiter, ``paygate.db.limits``.)"""

from __future__ import annotations

import psycopg

from ..types import Merchant
from .merchants import COLUMNS as merchant_columns
from .rows import merchant_from_row


def secret(conn: psycopg.Connection, name: str, candidate: str) -> str:
    """The stored secret ``name``; ``candidate`` becomes it when none exists yet (first wins)."""
    conn.execute(
        "INSERT INTO dashboard_secrets (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (name, candidate),
    )
    row = conn.execute("SELECT value FROM dashboard_secrets WHERE name = %s", (name,)).fetchone()
    return row["value"]


def payment_moments(conn: psycopg.Connection, payment_id: str, merchant_id: str) -> dict | None:
    """When the payment settled and was captured (columns the public view leaves out)."""
    return conn.execute(
        """SELECT created_at, settled_at, captured_at, updated_at FROM payments
            WHERE id = %s AND merchant_id = %s""",
        (payment_id, merchant_id),
    ).fetchone()


# -- staff sessions -------------------------------------------------------------------------

LIVE_SESSION = "revoked_at IS NULL AND expires_at > now()"


def insert_session(
    conn: psycopg.Connection, id_hash: str, merchant_id: str, expires_at: float
) -> None:
    """Record a new session, and forget this merchant's sessions that ended over a day ago."""
    conn.execute(
        """DELETE FROM dashboard_sessions
           WHERE merchant_id = %s AND coalesce(revoked_at, expires_at) < now() - interval '1 day'""",
        (merchant_id,),
    )
    conn.execute(
        """INSERT INTO dashboard_sessions (id_hash, merchant_id, expires_at)
           VALUES (%s, %s, to_timestamp(%s))""",
        (id_hash, merchant_id, expires_at),
    )


def session_merchant(
    conn: psycopg.Connection, id_hash: str, idle_seconds: float
) -> Merchant | None:
    """The merchant of a live session (not signed out, not expired, used within
    ``idle_seconds``), or None. Using it counts as activity: its idle clock starts again."""
    row = conn.execute(
        f"""WITH seen AS (
                UPDATE dashboard_sessions SET last_seen_at = now()
                WHERE id_hash = %s AND {LIVE_SESSION}
                  AND last_seen_at > now() - make_interval(secs => %s)
                RETURNING merchant_id)
            SELECT {merchant_columns} FROM merchants
            WHERE id = (SELECT merchant_id FROM seen)""",
        (id_hash, idle_seconds),
    ).fetchone()
    return merchant_from_row(row) if row is not None else None


def revoke_sessions(
    conn: psycopg.Connection,
    *,
    key: str | None = None,
    merchant_id: str | None = None,
    keep: str | None = None,
) -> int:
    """End live sessions: the one whose key is ``key``, or every one of ``merchant_id`` but
    ``keep``. The number ended."""
    if key is not None:
        where, params = "id_hash = %s", (key,)
    else:
        where, params = "merchant_id = %s AND id_hash IS DISTINCT FROM %s", (merchant_id, keep)
    return conn.execute(
        f"UPDATE dashboard_sessions SET revoked_at = now() WHERE {where} AND {LIVE_SESSION}",
        params,
    ).rowcount


def live_sessions(conn: psycopg.Connection, merchant_id: str, idle_seconds: float) -> int:
    return conn.execute(
        f"""SELECT count(*) AS n FROM dashboard_sessions
            WHERE merchant_id = %s AND {LIVE_SESSION}
              AND last_seen_at > now() - make_interval(secs => %s)""",
        (merchant_id, idle_seconds),
    ).fetchone()["n"]
