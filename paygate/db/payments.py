"""Payments: creation with its outbox rows, lookups, listing, and the settlement state machine.

Every transition is guarded in SQL by the state it expects, so a job that runs twice (or two
workers racing on one payment) changes the row at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ..errors import PAYMENT_ALREADY_PENDING, Conflict
from . import scheduling
from .idempotency import COMPLETE_CTE
from .outbox import events_cte, events_rows_cte

COLUMNS = (
    "id, order_id, merchant_id, amount, currency, method, status, processor, vpa, card_network, "
    "card_last4, captured, captured_at, amount_refunded, error_code, error_description, "
    "processor_reference, processor_attempts, charge_acknowledged, checkout, created_at, "
    "updated_at, method_token, next_action_url, amount_captured, capture_status, "
    "capture_error_code, capture_error_description, released_at, routing"
)

INSERT = f"""
WITH payment AS (
    INSERT INTO payments (id, order_id, merchant_id, amount, currency, method, processor, vpa,
                          card_network, card_last4, checkout, created_at, updated_at,
                          next_check_at, enqueued_at, method_token, routing)
    VALUES (%(id)s, %(order_id)s, %(merchant_id)s, %(amount)s, %(currency)s, %(method)s,
            %(processor)s, %(vpa)s, %(card_network)s, %(card_last4)s, %(checkout)s,
            %(created_at)s, %(created_at)s, %(created_at)s, now(), %(method_token)s,
            %(routing)s)
    RETURNING id
), {events_cte()}, {COMPLETE_CTE}
SELECT (SELECT id FROM payment) AS id,
       coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids
"""


def insert(conn: psycopg.Connection, params: dict[str, Any]) -> list:
    """Insert a pending payment and its creation events; return the new webhook log ids.
    A second pending checkout payment on one order is refused (Conflict)."""
    routing = params.get("routing")
    params = {**params, "routing": Jsonb(routing) if routing is not None else None}
    try:
        row = conn.execute(INSERT, params).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        if getattr(exc.diag, "constraint_name", None) != "idx_payments_one_pending_checkout":
            raise
        raise Conflict(PAYMENT_ALREADY_PENDING, field="order_id") from exc
    return row["webhook_ids"]


def get(conn: psycopg.Connection, payment_id: str, merchant_id: str | None = None) -> dict | None:
    if merchant_id is None:
        return conn.execute(
            f"SELECT {COLUMNS} FROM payments WHERE id = %s", (payment_id,)
        ).fetchone()
    return conn.execute(
        f"SELECT {COLUMNS} FROM payments WHERE id = %s AND merchant_id = %s",
        (payment_id, merchant_id),
    ).fetchone()


def lock(conn: psycopg.Connection, payment_id: str, merchant_id: str) -> dict | None:
    """Lock the payment row for the rest of the transaction (refunds and captures serialize)."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM payments WHERE id = %s AND merchant_id = %s FOR UPDATE",
        (payment_id, merchant_id),
    ).fetchone()


FILTERS = {
    "status": "status = %(status)s",
    "method": "method = %(method)s",
    "order_id": "order_id = %(order_id)s",
    "created_from": "created_at >= %(created_from)s",
    "created_to": "created_at < %(created_to)s",
    "amount_min": "amount >= %(amount_min)s",
    "amount_max": "amount <= %(amount_max)s",
    "search": "(id ILIKE %(search)s OR order_id ILIKE %(search)s)",
    "card_last4": "card_last4 = %(card_last4)s",
    "vpa_contains": "vpa ILIKE %(vpa_contains)s",
    "refund_id": """id = (SELECT payment_id FROM refunds
                         WHERE id = %(refund_id)s AND merchant_id = %(merchant_id)s)""",
}
LIKE_FILTERS = ("search", "vpa_contains")  # matched anywhere in the column


def _where(merchant_id: str, filters: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The WHERE clause and parameters of a merchant's payments under ``filters`` (the keys
    of ``FILTERS``, as ``validation.payment_filters`` makes them; None values are no filter)."""
    chosen = {k: v for k, v in (filters or {}).items() if v is not None and k in FILTERS}
    where = " AND ".join(["merchant_id = %(merchant_id)s", *(FILTERS[k] for k in chosen)])
    params = {"merchant_id": merchant_id, **chosen}
    for name in LIKE_FILTERS:
        if name in params:
            params[name] = f"%{_escape_like(params[name])}%"
    return where, params


def list_for_merchant(
    conn: psycopg.Connection,
    merchant_id: str,
    *,
    limit: int,
    offset: int,
    filters: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    where, params = _where(merchant_id, filters)
    params.update(limit=limit, offset=offset)
    rows = conn.execute(
        f"""SELECT {COLUMNS}, count(*) OVER () AS total_count FROM payments WHERE {where}
            ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    ).fetchall()
    if rows:
        return rows, rows[0]["total_count"]
    total = conn.execute(f"SELECT count(*) AS n FROM payments WHERE {where}", params).fetchone()
    return rows, total["n"]


def keyset_page(
    conn: psycopg.Connection,
    merchant_id: str,
    *,
    limit: int,
    after: tuple[Any, str] | None = None,
    filters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` of the merchant's payments under ``filters``, newest first, that come
    after ``after`` (the ``(created_at, id)`` of the last row of the previous page). Each page
    costs the same however deep it is (no OFFSET): the CSV export reads any size this way."""
    where, params = _where(merchant_id, filters)
    params["limit"] = limit
    if after is not None:
        where += " AND (created_at, id) < (%(after_created)s, %(after_id)s)"
        params.update(after_created=after[0], after_id=after[1])
    return conn.execute(
        f"""SELECT {COLUMNS} FROM payments WHERE {where}
            ORDER BY created_at DESC, id DESC LIMIT %(limit)s""",
        params,
    ).fetchall()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- the settlement state machine (worker side) ---------------------------------------------


def claim(conn: psycopg.Connection, payment_id: str, lease_seconds: float) -> dict | None:
    """Take the payment for processing if it is pending, due, and nobody holds a live lease."""
    return scheduling.claim(conn, "payments", payment_id, lease_seconds, COLUMNS)


def claim_many(conn: psycopg.Connection, payment_ids: list[str], lease_seconds: float) -> dict:
    """``claim`` for several payments in one statement: the claimed rows by id, each with its
    lease (``locked_until``, the token ``give_back`` takes)."""
    columns = f"{COLUMNS}, locked_until"
    return scheduling.claim_many(conn, "payments", payment_ids, lease_seconds, columns)


def give_back(conn: psycopg.Connection, payment_ids: list[str], lease: datetime) -> list[str]:
    """Release claimed payments that were not worked on (``scheduling.give_back``)."""
    return scheduling.give_back(conn, "payments", payment_ids, lease)


SETTLE = f"""
WITH settled AS (
    UPDATE payments
       SET status = %(status)s, error_code = %(error_code)s,
           error_description = %(error_description)s,
           processor_reference = coalesce(%(reference)s, processor_reference),
           settled_at = now(), updated_at = %(updated_at)s, locked_until = NULL,
           next_action_url = NULL
     WHERE id = %(resource_id)s AND {scheduling.STILL_PENDING}
 RETURNING id, order_id, checkout
), paid AS (
    UPDATE orders SET status = 'paid', updated_at = now()
     WHERE id = (SELECT order_id FROM settled) AND %(status)s = 'success' AND status = 'created'
 RETURNING id
), {events_cte(only_if="settled")}
SELECT (SELECT count(*) FROM settled) AS settled,
       (SELECT count(*) FROM paid) AS paid,
       coalesce((SELECT checkout FROM settled), FALSE) AS checkout,
       coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids
"""


@dataclass(frozen=True)
class Settled:
    changed: bool  # the payment moved from pending (False: someone else settled it)
    duplicate: bool  # a checkout payment succeeded on an order that was already paid
    webhook_ids: list


def settle(conn: psycopg.Connection, params: dict[str, Any]) -> Settled:
    """Move a pending payment to success/failed with its event. A success pays its order; the
    order's row lock makes one of two concurrent successes the payer, the other a duplicate."""
    row = conn.execute(SETTLE, params).fetchone()
    changed = bool(row["settled"])
    duplicate = changed and params["status"] == "success" and row["checkout"] and not row["paid"]
    return Settled(changed, duplicate, row["webhook_ids"])


# ``settle`` for several payments (a batch's final outcomes, any merchants) in one statement.
# The payments are found by ``id = ANY(ids)`` (their primary key): joined to the unnest alone,
# the planner, which cannot count an unnest's rows, may scan the whole table.
# Orders are locked in id order before they are marked paid, so two batches that pay the same
# orders cannot deadlock. No duplicate is looked for: a buyer's (checkout) success is settled on
# its own (``settle``), with its automatic refund when it finds its order already paid.
SETTLE_MANY = f"""
WITH input AS (
    SELECT *
      FROM unnest(%(ids)b::text[], %(outcomes)b::text[], %(error_codes)b::text[],
                  %(error_descriptions)b::text[], %(references)b::text[],
                  %(updated_ats)b::timestamptz[], %(merchant_ids)b::uuid[], %(event_ids)b::uuid[],
                  %(event_names)b::text[], %(event_bodies)b::text[])
           AS i(id, outcome, error_code, error_description, reference, updated_at, merchant_id,
                event_id, event, body)
), settled AS (
    UPDATE payments
       SET status = i.outcome, error_code = i.error_code,
           error_description = i.error_description,
           processor_reference = coalesce(i.reference, processor_reference),
           settled_at = now(), updated_at = i.updated_at, locked_until = NULL,
           next_action_url = NULL
      FROM input i
     WHERE payments.id = ANY(%(ids)b::text[]) AND payments.id = i.id
       AND {scheduling.STILL_PENDING}
 RETURNING payments.id, payments.order_id, i.outcome
), payers AS (
    SELECT id FROM orders
     WHERE id IN (SELECT order_id FROM settled WHERE outcome = 'success') AND status = 'created'
     ORDER BY id
       FOR UPDATE
), paid AS (
    UPDATE orders SET status = 'paid', updated_at = now()
     WHERE id IN (SELECT id FROM payers) AND status = 'created'
), {
    events_rows_cte(
        "SELECT i.event_id, i.merchant_id, i.event, i.id, i.body"
        " FROM input i JOIN settled s ON s.id = i.id"
    )
}
SELECT coalesce((SELECT array_agg(id) FROM settled), '{{}}') AS settled,
       coalesce((SELECT array_agg(id) FROM events), '{{}}') AS webhook_ids
"""


def settle_many(conn: psycopg.Connection, settlements: list[dict[str, Any]]) -> tuple[set, list]:
    """``settle`` for several payments in one statement (none of them a buyer's success): each
    of ``settlements`` is ``settle``'s parameters for one payment, with its one event. The ids
    that moved from pending (the others were settled by someone else), and every webhook log
    id written."""
    row = conn.execute(SETTLE_MANY, settle_many_params(settlements)).fetchone()
    return set(row["settled"]), row["webhook_ids"]


def settle_many_params(settlements: list[dict[str, Any]]) -> dict[str, list]:
    """``SETTLE_MANY``'s parameters: one array per column, one element per payment."""
    columns = {
        "ids": "resource_id",
        "outcomes": "status",
        "error_codes": "error_code",
        "error_descriptions": "error_description",
        "references": "reference",
        "updated_ats": "updated_at",
    }
    params = {name: [s[key] for s in settlements] for name, key in columns.items()}
    params["merchant_ids"] = [str(s["merchant_id"]) for s in settlements]
    for name in ("event_ids", "event_names", "event_bodies"):
        params[name] = [s[name][0] for s in settlements]
    return params


def defer(
    conn: psycopg.Connection,
    payment_id: str,
    delay_seconds: float,
    reference: str | None,
    acknowledged: bool,
    next_action_url: str | None = None,
) -> None:
    """The outcome is not known yet: release the lease and look again after ``delay_seconds``.
    ``acknowledged`` records that the processor has seen the charge (sync from now on);
    ``next_action_url``, where the buyer must go first (kept when None)."""
    scheduling.defer(
        conn,
        "payments",
        payment_id,
        delay_seconds,
        reference,
        "charge_acknowledged = charge_acknowledged OR %s, "
        "next_action_url = coalesce(%s, next_action_url)",
        (acknowledged, next_action_url),
    )


def switch_processor(
    conn: psycopg.Connection,
    payment_id: str,
    from_processor: str,
    to_processor: str,
    routing: dict[str, Any],
    method_token: str | None = None,
) -> bool:
    """Move a pending payment whose charge no processor has acknowledged from
    ``from_processor`` to ``to_processor`` with ``method_token`` (the token ``to_processor``
    gave for the stored method details; None for a processor without ``tokenize``: the old
    processor's token means nothing to it), its ``routing`` record rewritten, and make it due
    now. Guarded by the state it expects: of two jobs that both saw the same outage, one moves
    the payment and the other changes nothing (False), so no payment is charged by two
    processors."""
    row = conn.execute(
        f"""UPDATE payments
              SET processor = %s, method_token = %s, routing = %s, processor_attempts = 0,
                  next_check_at = now(), enqueued_at = now(), locked_until = NULL,
                  updated_at = now()
            WHERE id = %s AND {scheduling.STILL_PENDING} AND processor = %s
              AND NOT charge_acknowledged
        RETURNING id""",
        (to_processor, method_token, Jsonb(routing), payment_id, from_processor),
    ).fetchone()
    return row is not None


def record_routing(conn: psycopg.Connection, payment_id: str, routing: dict[str, Any]) -> None:
    """Rewrite a pending payment's ``routing`` record (an attempt added, nothing else)."""
    conn.execute(
        f"UPDATE payments SET routing = %s WHERE id = %s AND {scheduling.STILL_PENDING}",
        (Jsonb(routing), payment_id),
    )


def set_next_action(
    conn: psycopg.Connection, payment_id: str, url: str, reference: str | None
) -> bool:
    """A pending payment's buyer must act at ``url`` (a processor's callback said so)."""
    row = conn.execute(
        f"""UPDATE payments SET next_action_url = %s, updated_at = now(),
                  processor_reference = coalesce(%s, processor_reference)
            WHERE id = %s AND {scheduling.STILL_PENDING} AND next_action_url IS DISTINCT FROM %s
        RETURNING id""",
        (url, reference, payment_id, url),
    ).fetchone()
    return row is not None


def make_due(conn: psycopg.Connection, payment_id: str) -> dict | None:
    """The buyer is back from a next_action: a pending payment is due now (the caller
    dispatches its job). The payment as it is, None for an unknown id."""
    return conn.execute(
        f"""WITH due AS (
                UPDATE payments SET next_check_at = now(), enqueued_at = now()
                 WHERE id = %(id)s AND {scheduling.STILL_PENDING}
             RETURNING id)
            SELECT {COLUMNS}, (SELECT count(*) FROM due) AS made_due
              FROM payments WHERE id = %(id)s""",
        {"id": payment_id},
    ).fetchone()
