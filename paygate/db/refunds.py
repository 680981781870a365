"""Refunds: creation that reserves the amount on the payment, lookups, and the processing
state machine (``pending`` -> ``processed`` | ``failed``).

``payments.amount_refunded`` is the sum of the payment's ``pending`` and ``processed`` refunds.
It changes in the same statement that creates or fails a refund, and only under a guard
(``amount_refunded + amount <= amount``) that the ``payments_refund_within_amount`` CHECK backs
up, so no interleaving of requests can refund more than was paid.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..errors import REFUND_EXCEEDS_AVAILABLE, BadRequest
from . import scheduling
from .idempotency import COMPLETE_CTE
from .outbox import events_cte

COLUMNS = (
    "id, payment_id, merchant_id, amount, reason, status, error_code, error_description, "
    "processor_reference, processor_attempts, created_at, processed_at, updated_at"
)

# The refund exists only if the guarded reservation on its payment succeeded.
INSERT = f"""
WITH reserved AS (
    UPDATE payments
       SET amount_refunded = amount_refunded + %(amount)s, updated_at = %(created_at)s
     WHERE id = %(payment_id)s AND merchant_id = %(merchant_id)s AND status = 'success'
       AND amount_refunded + %(amount)s <= coalesce(amount_captured, amount)
       AND released_at IS NULL AND capture_status IS DISTINCT FROM 'pending'
 RETURNING id
), refund AS (
    INSERT INTO refunds (id, payment_id, merchant_id, amount, reason, created_at, updated_at,
                         next_check_at, enqueued_at)
    SELECT %(resource_id)s, id, %(merchant_id)s, %(amount)s, %(reason)s, %(created_at)s,
           %(created_at)s, %(created_at)s, now()
      FROM reserved
    RETURNING id
), {events_cte(only_if="refund")}, {COMPLETE_CTE}
SELECT (SELECT count(*) FROM refund) AS created,
       coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids
"""


def insert(conn: psycopg.Connection, params: dict[str, Any]) -> tuple[bool, list]:
    """Reserve the amount on the payment and insert the pending refund with its events.

    Returns (created, webhook log ids). ``created`` is False when the guard refused (the payment
    is not ``success`` or the amount does not fit): the caller must roll back, because the
    idempotency key's row is completed by the same statement.
    """
    try:
        row = conn.execute(INSERT, params).fetchone()
    except psycopg.errors.CheckViolation as exc:  # the last line of defence held
        raise BadRequest(REFUND_EXCEEDS_AVAILABLE, field="amount") from exc
    return bool(row["created"]), row["webhook_ids"]


def get(conn: psycopg.Connection, refund_id: str, merchant_id: str | None = None) -> dict | None:
    if merchant_id is None:
        return conn.execute(f"SELECT {COLUMNS} FROM refunds WHERE id = %s", (refund_id,)).fetchone()
    return conn.execute(
        f"SELECT {COLUMNS} FROM refunds WHERE id = %s AND merchant_id = %s",
        (refund_id, merchant_id),
    ).fetchone()


def list_for_payment(conn: psycopg.Connection, payment_id: str, merchant_id: str) -> list[dict]:
    """A payment's refunds, newest first."""
    return conn.execute(
        f"""SELECT {COLUMNS} FROM refunds WHERE payment_id = %s AND merchant_id = %s
             ORDER BY created_at DESC, id DESC""",
        (payment_id, merchant_id),
    ).fetchall()


# -- processing (worker side) -----------------------------------------------------------------


def claim(conn: psycopg.Connection, refund_id: str, lease_seconds: float) -> dict | None:
    """Take the refund for processing if it is pending, due, and nobody holds a live lease."""
    return scheduling.claim(conn, "refunds", refund_id, lease_seconds, COLUMNS)


def defer(
    conn: psycopg.Connection, refund_id: str, delay_seconds: float, reference: str | None
) -> None:
    """The processor has no answer yet: ask again after ``delay_seconds``."""
    scheduling.defer(conn, "refunds", refund_id, delay_seconds, reference)


PROCESSED = f"""
WITH done AS (
    UPDATE refunds
       SET status = 'processed', processed_at = %(processed_at)s,
           processor_reference = coalesce(%(reference)s, processor_reference),
           updated_at = %(processed_at)s, locked_until = NULL
     WHERE id = %(resource_id)s AND {scheduling.STILL_PENDING}
 RETURNING id
), {events_cte(only_if="done")}
SELECT (SELECT count(*) FROM done) AS changed,
       coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids
"""

# A failed refund gives its amount back to the payment in the same statement.
FAILED = f"""
WITH done AS (
    UPDATE refunds
       SET status = 'failed', error_code = %(error_code)s,
           error_description = %(error_description)s,
           processor_reference = coalesce(%(reference)s, processor_reference),
           updated_at = %(updated_at)s, locked_until = NULL
     WHERE id = %(resource_id)s AND {scheduling.STILL_PENDING}
 RETURNING payment_id, amount
), freed AS (
    UPDATE payments p
       SET amount_refunded = p.amount_refunded - done.amount, updated_at = %(updated_at)s
      FROM done
     WHERE p.id = done.payment_id
), {events_cte(only_if="done")}
SELECT (SELECT count(*) FROM done) AS changed,
       coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids
"""


def mark_processed(conn: psycopg.Connection, params: dict[str, Any]) -> tuple[bool, list]:
    """pending -> processed with its event; (changed, webhook ids). Params: resource_id,
    processed_at, reference and the outbox parameters."""
    row = conn.execute(PROCESSED, params).fetchone()
    return bool(row["changed"]), row["webhook_ids"]


def mark_failed(conn: psycopg.Connection, params: dict[str, Any]) -> tuple[bool, list]:
    """pending -> failed, freeing the amount on the payment, with its event. Params:
    resource_id, error_code, error_description, reference, updated_at and the outbox ones."""
    row = conn.execute(FAILED, params).fetchone()
    return bool(row["changed"]), row["webhook_ids"]
