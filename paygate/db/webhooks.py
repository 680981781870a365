"""Webhook logs: the outbox rows and their delivery state machine.

A worker *claims* a due delivery by setting ``locked_until`` (a lease); the lease value it got
back is its token. The attempt's outcome is recorded only while that token still holds, so an
attempt that lost its lease (a manual retry reset the row meanwhile, or the lease ran out and
another worker took over) changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from ..types import WebhookAttempt, WebhookLog
from .rows import attempt_from_row, webhook_log_from_row
from .scheduling import STILL_PENDING

# Why a failed delivery failed (NULL unless ``failed``). Ended unsent (the URL removed, the
# endpoint disabled or deleted: ``abandon_without_url`` leaves ``last_attempt_at`` behind
# ``updated_at``): the reason it recorded as its response. Else its last attempt: the error
# (timeout, connection error, unreadable secret), or the answer's status and body.
FAILURE_REASON = (
    "CASE WHEN status <> 'failed' THEN NULL "
    "WHEN last_attempt_at IS NULL OR updated_at > last_attempt_at "
    "THEN coalesce(nullif(response_body, ''), 'Not sent') "
    "ELSE coalesce("
    "(SELECT a.error FROM webhook_attempts a WHERE a.webhook_log_id = webhook_logs.id "
    "ORDER BY a.id DESC LIMIT 1) "
    "|| coalesce(' (HTTP ' || response_code || ')', ''), "
    "'HTTP ' || response_code || coalesce(': ' || left(nullif(response_body, ''), 200), ''), "
    "'No answer') END"
)
# What the list shows (no bodies: a page of logs stays small).
# ``url``: where the delivery goes, the endpoint's URL or (primary) the merchant's current one.
LIST_COLUMNS = (
    "id, merchant_id, event, resource_id, status, attempts, last_attempt_at, next_retry_at, "
    "response_code, created_at, updated_at, endpoint_id, "
    "CASE WHEN endpoint_id IS NULL "
    "THEN (SELECT m.webhook_url FROM merchants m WHERE m.id = webhook_logs.merchant_id) "
    "ELSE (SELECT w.url FROM webhook_endpoints w WHERE w.id = webhook_logs.endpoint_id) "
    "END AS url, "
    f"{FAILURE_REASON} AS failure_reason"
)
COLUMNS = f"{LIST_COLUMNS}, body, response_body"


# A claim: the UPDATE that leases a due delivery (``{match}``: which), then what it needs.
CLAIM_UPDATE = """claimed AS (
               UPDATE webhook_logs
                  SET locked_until = now() + make_interval(secs => %(lease_seconds)s),
                      deferred = FALSE
                WHERE {match} AND {pending} AND next_retry_at <= now()
                  AND (locked_until IS NULL OR locked_until < now())
            RETURNING id, merchant_id, endpoint_id, event, body, attempts, locked_until
           )"""
CLAIM_SELECT = """SELECT c.*,
                  CASE WHEN c.endpoint_id IS NULL THEN m.webhook_url
                       WHEN w.enabled AND w.deleted_at IS NULL THEN w.url END AS webhook_url,
                  CASE WHEN c.endpoint_id IS NULL THEN m.webhook_secret
                       ELSE w.secret_sealed END AS webhook_secret,
                  CASE WHEN c.endpoint_id IS NULL AND m.previous_webhook_secret_until > now()
                       THEN m.previous_webhook_secret
                       WHEN c.endpoint_id IS NOT NULL AND w.previous_secret_until > now()
                       THEN w.previous_secret_sealed END AS previous_webhook_secret,
                  coalesce(c.endpoint_id, c.merchant_id) AS secret_owner,
                  CASE WHEN c.endpoint_id IS NULL THEN NULL
                       WHEN w.id IS NULL OR w.deleted_at IS NOT NULL THEN 'deleted'
                       WHEN NOT w.enabled THEN 'disabled' ELSE 'enabled' END AS endpoint_state,
                  b.state AS circuit_state, b.failures AS circuit_failures,
                  b.open_seconds AS circuit_open_seconds, b.retry_at AS circuit_retry_at,
                  b.version AS circuit_version, now() AS now
             FROM claimed c JOIN merchants m ON m.id = c.merchant_id
             LEFT JOIN webhook_endpoints w ON w.id = c.endpoint_id
             LEFT JOIN webhook_circuits b ON b.merchant_id = c.merchant_id
                   AND b.endpoint = coalesce(c.endpoint_id::text, 'primary')"""
CLAIM_ONE = (
    "WITH "
    + CLAIM_UPDATE.format(match="id = %(claim_id)s", pending=STILL_PENDING)
    + "\n"
    + CLAIM_SELECT
)


def claim(conn: psycopg.Connection, log_id: str, lease_seconds: float) -> dict | None:
    """Take a due, unleased delivery with where it goes and what signs it, all as stored; None
    if it is not ours to do (done, not due yet, or leased by another worker).

    For the primary endpoint (``endpoint_id`` NULL): the merchant's current URL and secret.
    For a further endpoint: that endpoint's URL and secret, while it is enabled and not deleted
    (``webhook_url`` NULL otherwise, ``endpoint_state`` saying why). ``previous_webhook_secret``
    is the replaced secret during a rotation's overlap window, else None. ``secret_owner`` is
    the id the secrets are sealed for (the merchant's, or the endpoint's).

    With it, in the same statement, the endpoint's circuit breaker as stored: ``circuit_state``,
    ``circuit_failures``, ``circuit_open_seconds``, ``circuit_retry_at``, ``circuit_version``
    (all None when the endpoint has no breaker row: closed, never failed) and the database's
    ``now``."""
    return conn.execute(CLAIM_ONE, {"lease_seconds": lease_seconds, "claim_id": log_id}).fetchone()


# An attempt's outcome and the schedule that follows from it; ``{v}``: where each value comes
# from (one attempt's parameters, or the row of a batch's ``input``).
_RECORD = """
WITH {input}updated AS (
    UPDATE webhook_logs w
       SET attempts = {v[attempt]},
           last_attempt_at = now(),
           response_code = {v[response_code]},
           response_body = {v[response_body]},
           status = CASE WHEN {v[ok]} THEN 'success'
                         WHEN {v[next_delay]} IS NULL THEN 'failed'
                         ELSE 'pending' END,
           next_retry_at = CASE WHEN {v[ok]} OR {v[next_delay]} IS NULL THEN NULL
                                ELSE now() + make_interval(secs => {v[next_delay]}) END,
           locked_until = NULL, enqueued_at = NULL, updated_at = now()
      {source}
     WHERE w.id = {v[id]} AND {pending} AND w.locked_until = {v[lease]}
 RETURNING w.id, w.status, w.attempts, w.next_retry_at
), attempt AS (
    INSERT INTO webhook_attempts (webhook_log_id, attempt, url, response_code, response_body,
                                  error, duration_ms)
    SELECT u.id, {v[attempt]}, {v[url]}, {v[response_code]}, {v[response_body]}, {v[error]},
           {v[duration_ms]}
      FROM updated u {join}
)
SELECT * FROM updated
"""
# The parameters of one attempt (see ``record_attempt``), and their SQL types.
RECORD_FIELDS = {
    "id": "uuid",
    "lease": "timestamptz",
    "attempt": "int",
    "url": "text",
    "ok": "bool",
    "response_code": "int",
    "response_body": "text",
    "error": "text",
    "duration_ms": "int",
    "next_delay": "float8",
}
RECORD = _RECORD.format(
    input="",
    source="",
    join="",
    v={name: f"%({name})s::{kind}" for name, kind in RECORD_FIELDS.items()},
    pending=STILL_PENDING,
)
# Many attempts at once (``record_attempts``): the parameters as one array each, a row each.
RECORD_MANY = _RECORD.format(
    input="input AS (SELECT * FROM unnest("
    + ", ".join(f"%({name})s::{kind}[]" for name, kind in RECORD_FIELDS.items())
    + ") AS i("
    + ", ".join(RECORD_FIELDS)
    + ")), ",
    source="FROM input i",
    join="JOIN input i ON i.id = u.id",
    v={name: f"i.{name}" for name in RECORD_FIELDS},
    pending=STILL_PENDING,
)
CLAIM_MANY = (
    "WITH "
    + CLAIM_UPDATE.format(match="id = ANY(%(claim_ids)s::uuid[])", pending=STILL_PENDING)
    + "\n"
    + CLAIM_SELECT
)


def claim_many(conn: psycopg.Connection, log_ids: list[str], lease_seconds: float) -> dict:
    """``claim`` for several deliveries in one statement, all with the same lease: the claimed
    rows by id (those not ours to do are left out)."""
    rows = conn.execute(CLAIM_MANY, {"lease_seconds": lease_seconds, "claim_ids": log_ids})
    return {str(row["id"]): row for row in rows.fetchall()}


def record_attempts(conn: psycopg.Connection, attempts: list[dict[str, Any]]) -> dict:
    """``record_attempt`` for several attempts in one statement (one commit): the recorded rows
    by id; an attempt whose lease was lost is left out (nothing written for it)."""
    columns = {name: [a[name] for a in attempts] for name in RECORD_FIELDS}
    return {str(row["id"]): row for row in conn.execute(RECORD_MANY, columns).fetchall()}


def give_back(conn: psycopg.Connection, log_ids: list[str], lease: datetime) -> list[str]:
    """Release claimed deliveries that were not attempted (a batch that ran out of lease), due
    now and marked dispatched: the ids still pending, for the caller to enqueue."""
    rows = conn.execute(
        f"""UPDATE webhook_logs SET locked_until = NULL, enqueued_at = now()
            WHERE id = ANY(%s::uuid[]) AND {STILL_PENDING} AND locked_until = %s
        RETURNING id""",
        (log_ids, lease),
    ).fetchall()
    return [str(row["id"]) for row in rows]


def record_attempt(conn: psycopg.Connection, params: dict[str, Any]) -> dict | None:
    """Write one attempt's outcome and the schedule that follows from it, in one statement.

    ``params``: id, lease (the claim's ``locked_until``), attempt, url, ok, response_code,
    response_body, error, duration_ms, next_delay (seconds until the next attempt, or None when
    there is none). Returns None when the lease was lost: nothing is written then.
    """
    return conn.execute(RECORD, params).fetchone()


def abandon_without_url(
    conn: psycopg.Connection, log_id: str, lease: datetime, reason: str
) -> None:
    """Nothing can be sent: the merchant removed its URL after the event was written, or the
    endpoint was disabled or deleted since. The log fails with ``reason`` as its response."""
    conn.execute(
        f"""UPDATE webhook_logs
              SET status = 'failed', next_retry_at = NULL, locked_until = NULL,
                  enqueued_at = NULL, response_body = %s, updated_at = now()
            WHERE id = %s AND {STILL_PENDING} AND locked_until = %s""",
        (reason, log_id, lease),
    )


def get(conn: psycopg.Connection, log_id: str, merchant_id: str) -> WebhookLog | None:
    """One of the merchant's logs in full: its payload, last response and every attempt."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM webhook_logs WHERE id = %s AND merchant_id = %s",
        (log_id, merchant_id),
    ).fetchone()
    if row is None:
        return None
    return webhook_log_from_row(row, attempts(conn, [log_id]).get(str(row["id"]), []))


def attempts(conn: psycopg.Connection, log_ids: list) -> dict[str, list[WebhookAttempt]]:
    """Every recorded attempt of these deliveries, in order, by log id."""
    by_log: dict[str, list[WebhookAttempt]] = {}
    if not log_ids:
        return by_log
    rows = conn.execute(
        """SELECT webhook_log_id, attempt, url, response_code, response_body, error,
                  duration_ms, attempted_at
             FROM webhook_attempts WHERE webhook_log_id = ANY(%s)
            ORDER BY webhook_log_id, attempt, id""",
        (log_ids,),
    ).fetchall()
    for row in rows:
        by_log.setdefault(str(row["webhook_log_id"]), []).append(attempt_from_row(row))
    return by_log


def for_resources(
    conn: psycopg.Connection, merchant_id: str, resource_ids: list[str]
) -> list[WebhookLog]:
    """The deliveries of these resources (a payment and its refunds), oldest first, each with
    its attempts."""
    rows = conn.execute(
        f"""SELECT {LIST_COLUMNS} FROM webhook_logs
             WHERE merchant_id = %s AND resource_id = ANY(%s)
             ORDER BY created_at, id""",
        (merchant_id, resource_ids),
    ).fetchall()
    by_log = attempts(conn, [row["id"] for row in rows])
    return [webhook_log_from_row(row, by_log.get(str(row["id"]), [])) for row in rows]


def list_for_merchant(
    conn: psycopg.Connection,
    merchant_id: str,
    *,
    limit: int,
    offset: int,
    resource_id: str | None = None,
) -> tuple[list[WebhookLog], int]:
    """One page of a merchant's logs, newest first, and the total count."""
    where = "merchant_id = %(merchant_id)s"
    if resource_id is not None:
        where += " AND resource_id = %(resource_id)s"
    params = {
        "merchant_id": merchant_id,
        "limit": limit,
        "offset": offset,
        "resource_id": resource_id,
    }
    rows = conn.execute(
        f"""SELECT {LIST_COLUMNS}, count(*) OVER () AS total_count FROM webhook_logs
             WHERE {where}
             ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    ).fetchall()
    if rows:
        return [webhook_log_from_row(row) for row in rows], rows[0]["total_count"]
    total = conn.execute(f"SELECT count(*) AS n FROM webhook_logs WHERE {where}", params)
    return [], total.fetchone()["n"]


def reset_for_retry(conn: psycopg.Connection, log_id: str, merchant_id: str) -> dict | None:
    """Manual retry: attempts start again from zero and the delivery is due now. Any attempt
    still in flight loses its lease, so its outcome is not recorded over the reset."""
    return conn.execute(
        f"""UPDATE webhook_logs
               SET status = 'pending', attempts = 0, next_retry_at = now(), locked_until = NULL,
                   enqueued_at = now(), updated_at = now()
             WHERE id = %s AND merchant_id = %s
         RETURNING {LIST_COLUMNS}""",
        (log_id, merchant_id),
    ).fetchone()


def insert_test_event(
    conn: psycopg.Connection, params: dict[str, Any], endpoint_id: str | None
) -> list:
    """Write one ``webhook.test`` event (``event_params``, one envelope) for one target only:
    the merchant's primary URL (``endpoint_id`` None; the log id is the event id) or that
    enabled endpoint. Returns the new log id in a list; empty, with nothing written (not even
    the event), when the target has no URL, is disabled or is not the merchant's."""
    row = conn.execute(
        """WITH target AS (
               SELECT NULL::uuid AS endpoint_id FROM merchants m
                WHERE %(endpoint_id)s::uuid IS NULL AND m.id = %(merchant_id)s::uuid
                  AND coalesce(m.webhook_url, '') <> ''
               UNION ALL
               SELECT w.id FROM webhook_endpoints w
                WHERE w.id = %(endpoint_id)s::uuid AND w.merchant_id = %(merchant_id)s::uuid
                  AND w.enabled AND w.deleted_at IS NULL
           ), recorded AS (
               INSERT INTO events (id, merchant_id, event, resource_id, body)
               SELECT e.id, %(merchant_id)s::uuid, e.event, %(resource_id)s, e.body
                 FROM unnest(%(event_ids)s::uuid[], %(event_names)s::text[],
                             %(event_bodies)s::text[]) AS e(id, event, body)
                WHERE EXISTS (SELECT 1 FROM target)
               RETURNING id, event, body
           ), logs AS (
               INSERT INTO webhook_logs (id, merchant_id, event, resource_id, payload, body,
                                         next_retry_at, enqueued_at, endpoint_id, event_id)
               SELECT CASE WHEN t.endpoint_id IS NULL THEN e.id ELSE gen_random_uuid() END,
                      %(merchant_id)s::uuid, e.event, %(resource_id)s, e.body::jsonb, e.body,
                      now(), now(), t.endpoint_id, e.id
                 FROM recorded e CROSS JOIN target t
               RETURNING id
           )
           SELECT coalesce((SELECT array_agg(id) FROM logs), '{}') AS webhook_ids""",
        {**params, "endpoint_id": endpoint_id},
    ).fetchone()
    return row["webhook_ids"]


def target_of(conn: psycopg.Connection, log_id: str, merchant_id: str) -> dict | None:
    """Where one of the merchant's logs goes now, for a manual retry: ``url`` (None when there
    is nowhere to send it) and ``endpoint_state`` (None for the primary, else ``enabled``,
    ``disabled`` or ``deleted``); None when the log is not the merchant's."""
    return conn.execute(
        """SELECT l.endpoint_id,
                  CASE WHEN l.endpoint_id IS NULL THEN nullif(m.webhook_url, '')
                       WHEN w.enabled AND w.deleted_at IS NULL THEN w.url END AS url,
                  CASE WHEN l.endpoint_id IS NULL THEN NULL
                       WHEN w.id IS NULL OR w.deleted_at IS NOT NULL THEN 'deleted'
                       WHEN NOT w.enabled THEN 'disabled' ELSE 'enabled' END AS endpoint_state
             FROM webhook_logs l JOIN merchants m ON m.id = l.merchant_id
             LEFT JOIN webhook_endpoints w ON w.id = l.endpoint_id
            WHERE l.id = %s AND l.merchant_id = %s""",
        (log_id, merchant_id),
    ).fetchone()


# -- the endpoints' circuit breakers (webhook_circuits, migration 016) ----------------------
# An endpoint is ``(merchant_id, endpoint)``: ``endpoint`` is 'primary' for the merchant's
# webhook_url, else the webhook_endpoints id as text (the claim builds the same key).
PRIMARY_ENDPOINT = "primary"
CIRCUIT_COLUMNS = "state, failures, open_seconds, retry_at"


def endpoint_key(endpoint_id: Any) -> str:
    return PRIMARY_ENDPOINT if endpoint_id is None else str(endpoint_id)


def read_circuit(conn: psycopg.Connection, merchant_id: Any, endpoint_id: Any) -> dict | None:
    """The endpoint's breaker as stored, with its ``version``; None when it has no row (closed,
    never failed). Only after a versioned write lost to another worker's: the claim returns
    the breaker with the delivery."""
    return conn.execute(
        f"""SELECT {CIRCUIT_COLUMNS}, version FROM webhook_circuits
             WHERE merchant_id = %s AND endpoint = %s""",
        (merchant_id, endpoint_key(endpoint_id)),
    ).fetchone()


def write_circuit(
    conn: psycopg.Connection,
    merchant_id: Any,
    endpoint_id: Any,
    version: int | None,
    circuit: dict[str, Any],
    retry_in: float | None,
) -> dict | None:
    """Store a breaker's ``state``, ``failures``, ``open_seconds`` and ``retry_at`` (the
    database's now + ``retry_in`` seconds when that is given) if it is still at ``version``
    (None: it has no row yet, and the row is created). One statement. Returns the stored
    ``retry_at`` and ``version``; None when another worker changed it first (read it again)."""
    return conn.execute(
        """INSERT INTO webhook_circuits AS b
                  (merchant_id, endpoint, state, failures, open_seconds, retry_at, version)
           VALUES (%(merchant_id)s, %(endpoint)s, %(state)s, %(failures)s, %(open_seconds)s,
                   coalesce(now() + make_interval(secs => %(retry_in)s::float8),
                            %(retry_at)s::timestamptz), 1)
           ON CONFLICT (merchant_id, endpoint) DO UPDATE
              SET state = excluded.state, failures = excluded.failures,
                  open_seconds = excluded.open_seconds, retry_at = excluded.retry_at,
                  version = b.version + 1, updated_at = now()
            WHERE b.version = %(version)s::bigint
        RETURNING retry_at, version""",
        {
            **circuit,
            "retry_in": retry_in,
            "version": version,
            "merchant_id": merchant_id,
            "endpoint": endpoint_key(endpoint_id),
        },
    ).fetchone()


def unclaim_and_defer(
    conn: psycopg.Connection, log_id: str, lease: datetime, until: datetime
) -> None:
    """Give a claimed delivery back without an attempt (its endpoint's breaker is open, or the
    endpoint is at its cap) and put it off until ``until``: nothing recorded against it."""
    conn.execute(
        f"""UPDATE webhook_logs
              SET next_retry_at = greatest(%s, now()), deferred = TRUE, enqueued_at = NULL,
                  locked_until = NULL
            WHERE id = %s AND {STILL_PENDING} AND locked_until = %s""",
        (until, log_id, lease),
    )


def release_deferred(
    conn: psycopg.Connection, merchant_id: Any, endpoint_id: Any, limit: int
) -> list[str]:
    """Make up to ``limit`` of the endpoint's deferred deliveries due now (marked dispatched:
    the caller enqueues them), oldest first."""
    rows = conn.execute(
        """UPDATE webhook_logs SET next_retry_at = now(), deferred = FALSE, enqueued_at = now()
            WHERE id IN (
                SELECT id FROM webhook_logs
                 WHERE merchant_id = %s AND deferred AND status = 'pending'
                   AND endpoint_id IS NOT DISTINCT FROM %s::uuid
                   AND (locked_until IS NULL OR locked_until < now())
                 ORDER BY next_retry_at, id
                 LIMIT %s
                   FOR UPDATE SKIP LOCKED)
        RETURNING id""",
        (merchant_id, endpoint_id, limit),
    ).fetchall()
    return [str(row["id"]) for row in rows]


def circuits_for(conn: psycopg.Connection, merchant_id: str) -> tuple[dict[str, dict], datetime]:
    """The merchant's breakers by endpoint key, and the database's ``now``."""
    rows = conn.execute(
        f"""SELECT endpoint, {CIRCUIT_COLUMNS}, now() AS now FROM webhook_circuits
             WHERE merchant_id = %s""",
        (merchant_id,),
    ).fetchall()
    now = rows[0]["now"] if rows else conn.execute("SELECT now() AS now").fetchone()["now"]
    return {row["endpoint"]: row for row in rows}, now


def probe_now(conn: psycopg.Connection, merchant_id: Any, endpoint_id: Any) -> None:
    """An open breaker lets its next delivery go now, as the probe (a manual retry or test)."""
    conn.execute(
        """UPDATE webhook_circuits
              SET retry_at = now(), version = version + 1, updated_at = now()
            WHERE merchant_id = %s AND endpoint = %s AND state = 'open'""",
        (merchant_id, endpoint_key(endpoint_id)),
    )
