"""Processor callbacks as received (``processor_callbacks``): one row per notification, never
its body. A verified event id is recorded once per processor (a redelivery finds its row)."""

from __future__ import annotations

from typing import Any

import psycopg

COLUMNS = (
    "id, processor, payment_id, refund_id, merchant_id, event_id, verified, outcome, applied, "
    "error_code, reference, received_at"
)

INSERT = """
INSERT INTO processor_callbacks (id, processor, payment_id, refund_id, merchant_id, event_id,
                                 verified, outcome, applied, error_code, reference)
VALUES (%(id)s, %(processor)s, %(payment_id)s, %(refund_id)s, %(merchant_id)s, %(event_id)s,
        %(verified)s, %(outcome)s, FALSE, %(error_code)s, %(reference)s)
ON CONFLICT (processor, event_id) WHERE verified AND event_id IS NOT NULL DO NOTHING
RETURNING id
"""


def record(conn: psycopg.Connection, params: dict[str, Any]) -> bool:
    """Record one callback; False when it is a verified event already recorded (a duplicate)."""
    return conn.execute(INSERT, params).fetchone() is not None


def mark_applied(conn: psycopg.Connection, callback_id: str) -> None:
    conn.execute("UPDATE processor_callbacks SET applied = TRUE WHERE id = %s", (callback_id,))


def for_payment(conn: psycopg.Connection, payment_id: str) -> list[dict[str, Any]]:
    """The callbacks about a payment and about its refunds, oldest first."""
    return conn.execute(
        f"""SELECT {COLUMNS} FROM processor_callbacks
             WHERE payment_id = %(id)s
                OR refund_id IN (SELECT id FROM refunds WHERE payment_id = %(id)s)
             ORDER BY received_at, id""",
        {"id": payment_id},
    ).fetchall()
