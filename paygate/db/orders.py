"""Orders: what a merchant expects to be paid."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .idempotency import COMPLETE_CTE

COLUMNS = "id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at"

INSERT = f"""
WITH created AS (
    INSERT INTO orders (id, merchant_id, amount, currency, receipt, notes, created_at, updated_at)
    VALUES (%(id)s, %(merchant_id)s, %(amount)s, %(currency)s, %(receipt)s, %(notes)s,
            %(created_at)s, %(created_at)s)
    RETURNING id
), {COMPLETE_CTE} SELECT * FROM created
"""


def insert(conn: psycopg.Connection, values: dict[str, Any]) -> None:
    """Insert an order and, when ``idem_key`` is set, complete its idempotency row."""
    params = {"idem_key": None, "idem_code": None, "idem_body": None, **values}
    params["notes"] = Jsonb(values.get("notes") or {})
    conn.execute(INSERT, params)


def get(conn: psycopg.Connection, order_id: str, merchant_id: str | None = None) -> dict | None:
    if merchant_id is None:
        return conn.execute(f"SELECT {COLUMNS} FROM orders WHERE id = %s", (order_id,)).fetchone()
    return conn.execute(
        f"SELECT {COLUMNS} FROM orders WHERE id = %s AND merchant_id = %s",
        (order_id, merchant_id),
    ).fetchone()


def get_public(conn: psycopg.Connection, order_id: str) -> dict[str, Any] | None:
    """The order plus its merchant's public name, for the checkout page."""
    return conn.execute(
        """SELECT o.id, o.merchant_id, o.amount, o.currency, o.status, o.receipt,
                  m.name AS merchant_name
             FROM orders o JOIN merchants m ON m.id = o.merchant_id
            WHERE o.id = %s""",
        (order_id,),
    ).fetchone()


def list_for_merchant(
    conn: psycopg.Connection, merchant_id: str, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    rows = conn.execute(
        f"""SELECT {COLUMNS}, count(*) OVER () AS total_count FROM orders
             WHERE merchant_id = %s ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s""",
        (merchant_id, limit, offset),
    ).fetchall()
    if rows:
        return rows, rows[0]["total_count"]
    total = conn.execute(
        "SELECT count(*) AS n FROM orders WHERE merchant_id = %s", (merchant_id,)
    ).fetchone()["n"]
    return rows, total
