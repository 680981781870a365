"""Per-merchant processor settings as stored: sealed documents, never opened here (the
services module seals and opens them)."""

from __future__ import annotations

from typing import Any

import psycopg


def stored(conn: psycopg.Connection, merchant_id: str, processor: str) -> dict[str, Any] | None:
    """The row of one merchant and processor (``sealed``, ``key_id``, ``updated_at``,
    ``updated_by``), or None."""
    return conn.execute(
        """SELECT merchant_id, processor, sealed, key_id, updated_at, updated_by
             FROM processor_configs WHERE merchant_id = %s AND processor = %s""",
        (merchant_id, processor),
    ).fetchone()


def stored_for_update(
    conn: psycopg.Connection, merchant_id: str, processor: str
) -> dict[str, Any] | None:
    """Like ``stored``, locking the row (a change reads, merges and writes in one transaction)."""
    return conn.execute(
        """SELECT merchant_id, processor, sealed, key_id, updated_at, updated_by
             FROM processor_configs WHERE merchant_id = %s AND processor = %s FOR UPDATE""",
        (merchant_id, processor),
    ).fetchone()


def lock(conn: psycopg.Connection, merchant_id: str, processor: str) -> None:
    """Serialize changes of one merchant's settings for one processor (the row may not exist
    yet): a transaction-scoped advisory lock."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"processor_configs:{merchant_id}:{processor}",),
    )


def of_merchant(conn: psycopg.Connection, merchant_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT merchant_id, processor, sealed, key_id, updated_at, updated_by
             FROM processor_configs WHERE merchant_id = %s ORDER BY processor""",
        (merchant_id,),
    ).fetchall()


def every(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every stored row (for ``reseal`` and the catalogue's missing-settings report)."""
    return conn.execute(
        """SELECT merchant_id, processor, sealed, key_id, updated_at, updated_by
             FROM processor_configs ORDER BY merchant_id, processor"""
    ).fetchall()


def save(
    conn: psycopg.Connection,
    merchant_id: str,
    processor: str,
    sealed: str,
    key_id: str,
    updated_by: str,
) -> None:
    conn.execute(
        """INSERT INTO processor_configs (merchant_id, processor, sealed, key_id, updated_by)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (merchant_id, processor) DO UPDATE
              SET sealed = EXCLUDED.sealed, key_id = EXCLUDED.key_id,
                  updated_by = EXCLUDED.updated_by, updated_at = now()""",
        (merchant_id, processor, sealed, key_id, updated_by),
    )


def replace_sealed(
    conn: psycopg.Connection, merchant_id: str, processor: str, *, old: str, new: str, key_id: str
) -> bool:
    """Re-seal one row if it still holds ``old`` (a concurrent change wins); True if replaced.
    ``updated_at``/``updated_by`` stay: the values did not change."""
    cursor = conn.execute(
        """UPDATE processor_configs SET sealed = %s, key_id = %s
            WHERE merchant_id = %s AND processor = %s AND sealed = %s""",
        (new, key_id, merchant_id, processor, old),
    )
    return cursor.rowcount == 1


def delete(conn: psycopg.Connection, merchant_id: str, processor: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM processor_configs WHERE merchant_id = %s AND processor = %s",
        (merchant_id, processor),
    )
    return cursor.rowcount == 1
