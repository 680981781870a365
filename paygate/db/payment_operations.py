"""Captures and releases of a payment's authorization: the intent written before the processor
is asked, the outcome recorded once, and the job state of an outcome not known yet.

One ``payment_operations`` row per payment (its id is the payment's): ``begin`` writes it
``pending`` with a lease (so the janitor leaves it to the request that asks the processor), and
every outcome is recorded by one statement guarded by ``status = 'pending'``: the request and a
job that both learn an outcome record it once, and a crash between asking and recording leaves
a due row the janitor dispatches (the job asks again with the same idempotency key).
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..errors import CAPTURE_BELOW_REFUNDED, BadRequest
from . import scheduling
from .idempotency import COMPLETE_CTE
from .outbox import events_cte

TABLE = "payment_operations"
COLUMNS = (
    "id, merchant_id, operation, amount, status, error_code, error_description, "
    "processor_reference, processor_attempts, created_at, updated_at"
)

CAPTURE = "capture"
RELEASE = "release"

BEGIN = """
WITH op AS (
    INSERT INTO payment_operations (id, merchant_id, operation, amount, status,
                                    processor_attempts, next_check_at, locked_until,
                                    enqueued_at, created_at, updated_at)
    VALUES (%(id)s, %(merchant_id)s, %(operation)s, %(amount)s, 'pending', 1,
            now() + make_interval(secs => %(lease)s), now() + make_interval(secs => %(lease)s),
            NULL, now(), now())
    ON CONFLICT (id) DO UPDATE
       SET operation = EXCLUDED.operation, amount = EXCLUDED.amount, status = 'pending',
           error_code = NULL, error_description = NULL, processor_attempts = 1,
           next_check_at = EXCLUDED.next_check_at, locked_until = EXCLUDED.locked_until,
           enqueued_at = NULL, updated_at = now()
     WHERE payment_operations.status <> 'pending'
    RETURNING id
)
UPDATE payments
   SET capture_status = CASE WHEN %(operation)s = 'capture' THEN 'pending'
                             ELSE capture_status END,
       updated_at = now()
 WHERE id = (SELECT id FROM op)
RETURNING id
"""


def begin(
    conn: psycopg.Connection,
    payment_id: str,
    merchant_id: str,
    operation: str,
    amount: int,
    lease_seconds: float,
) -> bool:
    """Write the intent (under the caller's payment row lock): False when another capture or
    release of this payment is still pending."""
    row = conn.execute(
        BEGIN,
        {
            "id": payment_id,
            "merchant_id": merchant_id,
            "operation": operation,
            "amount": amount,
            "lease": lease_seconds,
        },
    ).fetchone()
    return row is not None


def pending(conn: psycopg.Connection, payment_id: str) -> dict | None:
    """The payment's capture or release still pending, if any."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM payment_operations WHERE id = %s AND {scheduling.STILL_PENDING}",
        (payment_id,),
    ).fetchone()


def claim(conn: psycopg.Connection, op_id: str, lease_seconds: float) -> dict | None:
    return scheduling.claim(conn, TABLE, op_id, lease_seconds, COLUMNS)


def defer(
    conn: psycopg.Connection, op_id: str, delay_seconds: float, reference: str | None
) -> None:
    scheduling.defer(conn, TABLE, op_id, delay_seconds, reference)


_DONE = f"""op AS (
    UPDATE payment_operations
       SET status = %(op_status)s, error_code = %(error_code)s,
           error_description = %(error_description)s,
           processor_reference = coalesce(%(reference)s, processor_reference),
           locked_until = NULL, updated_at = now()
     WHERE id = %(resource_id)s AND operation = %(operation)s AND {scheduling.STILL_PENDING}
 RETURNING id, amount
)"""

CAPTURED = f"""
WITH {_DONE}, captured AS (
    UPDATE payments
       SET captured = TRUE, captured_at = %(now)s, amount_captured = (SELECT amount FROM op),
           capture_status = 'success', capture_error_code = NULL,
           capture_error_description = NULL, updated_at = %(now)s
     WHERE id = (SELECT id FROM op) AND NOT captured
 RETURNING id
), {events_cte(only_if="captured")}
SELECT (SELECT count(*) FROM captured) AS changed,
       coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids
"""

CAPTURE_REFUSED = f"""
WITH {_DONE}, refused AS (
    UPDATE payments
       SET capture_status = 'failed', capture_error_code = %(error_code)s,
           capture_error_description = %(error_description)s, updated_at = %(now)s
     WHERE id = (SELECT id FROM op) AND NOT captured
 RETURNING id
)
SELECT (SELECT count(*) FROM refused) AS changed, '{{}}'::uuid[] AS webhook_ids
"""

RELEASED = f"""
WITH {_DONE}, released AS (
    UPDATE payments SET released_at = %(now)s, updated_at = %(now)s
     WHERE id = (SELECT id FROM op) AND NOT captured AND released_at IS NULL
 RETURNING id
), {events_cte(only_if="released")}
SELECT (SELECT count(*) FROM released) AS changed,
       coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids
"""

RELEASE_REFUSED = f"""
WITH {_DONE}
SELECT (SELECT count(*) FROM op) AS changed, '{{}}'::uuid[] AS webhook_ids
"""

_STATEMENTS = {
    (CAPTURE, True): CAPTURED,
    (CAPTURE, False): CAPTURE_REFUSED,
    (RELEASE, True): RELEASED,
    (RELEASE, False): RELEASE_REFUSED,
}


def finish(
    conn: psycopg.Connection, operation: str, success: bool, params: dict[str, Any]
) -> tuple[bool, list]:
    """Record a known outcome once (False when it was recorded already) with its events.
    ``params``: resource_id, merchant_id, now, reference, error_code, error_description and
    the event parameters."""
    params = {
        **params,
        "operation": operation,
        "op_status": "success" if success else "failed",
    }
    try:
        row = conn.execute(_STATEMENTS[(operation, success)], params).fetchone()
    except psycopg.errors.CheckViolation as exc:  # refunds took more than this capture
        raise BadRequest(CAPTURE_BELOW_REFUNDED, field="amount") from exc
    return bool(row["changed"]), row["webhook_ids"]


def complete_key(conn: psycopg.Connection, merchant_id: str, idem: dict[str, Any]) -> None:
    """Store a release's answer on its Idempotency-Key (``Token.params``)."""
    conn.execute(f"WITH {COMPLETE_CTE} SELECT 1", {"merchant_id": merchant_id, **idem})
