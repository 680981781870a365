"""Orders: what a merchant expects to be paid."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ..types import Order
from .idempotency import COMPLETE_CTE
from .rows import order_from_row

COLUMNS = "id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at"

INSERT = f"""
WITH created AS (
    INSERT INTO orders (id, merchant_id, amount, currency, receipt, notes, created_at, updated_at)
    VALUES (%(id)s, %(merchant_id)s, %(amount)s, %(currency)s, %(receipt)s, %(notes)s,
            %(created_at)s, %(created_at)s)
    RETURNING id
), {COMPLETE_CTE} SELECT * FROM created
"""


def insert(conn: psycopg.Connection, order: Order, extra: dict[str, Any] | None = None) -> None:
    """Insert an order; ``extra`` may carry an idempotency row to complete in the same
    statement (``idem_key``, ``idem_code``, ``idem_body``)."""
    params = {
        "idem_key": None,
        "idem_code": None,
        "idem_body": None,
        **(extra or {}),
        "id": order.id,
        "merchant_id": order.merchant_id,
        "amount": order.amount,
        "currency": order.currency,
        "receipt": order.receipt,
        "notes": Jsonb(order.notes),
        "created_at": order.created_at,
    }
    conn.execute(INSERT, params)


def get(conn: psycopg.Connection, order_id: str, merchant_id: str | None = None) -> Order | None:
    """The order (only when it is ``merchant_id``'s, when that is given), or None."""
    if merchant_id is None:
        row = conn.execute(f"SELECT {COLUMNS} FROM orders WHERE id = %s", (order_id,)).fetchone()
    else:
        row = conn.execute(
            f"SELECT {COLUMNS} FROM orders WHERE id = %s AND merchant_id = %s",
            (order_id, merchant_id),
        ).fetchone()
    return order_from_row(row) if row is not None else None


def get_public(conn: psycopg.Connection, order_id: str) -> tuple[Order, str] | None:
    """The order and its merchant's public name, for the checkout page."""
    row = conn.execute(
        """SELECT o.id, o.merchant_id, o.amount, o.currency, o.receipt, o.notes, o.status,
                  o.created_at, o.updated_at, m.name AS merchant_name
             FROM orders o JOIN merchants m ON m.id = o.merchant_id
            WHERE o.id = %s""",
        (order_id,),
    ).fetchone()
    return (order_from_row(row), row["merchant_name"]) if row is not None else None


def list_for_merchant(
    conn: psycopg.Connection, merchant_id: str, *, limit: int, offset: int
) -> tuple[list[Order], int]:
    rows = conn.execute(
        f"""SELECT {COLUMNS}, count(*) OVER () AS total_count FROM orders
             WHERE merchant_id = %s ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s""",
        (merchant_id, limit, offset),
    ).fetchall()
    if rows:
        return [order_from_row(row) for row in rows], rows[0]["total_count"]
    total = conn.execute(
        "SELECT count(*) AS n FROM orders WHERE merchant_id = %s", (merchant_id,)
    ).fetchone()["n"]
    return [], total
