"""Due-work queries shared by every job kind (payments, refunds, captures and releases,
webhook deliveries).

A job row is *due* when its status is ``pending``, its due time has passed and no worker holds a
live lease on it. Dispatching marks ``enqueued_at`` so a row is re-dispatched at most once per
``redispatch_after`` seconds, whoever asks, except when the record proves the queued task is gone:

- its lease ran out after it was dispatched (``enqueued_at < locked_until < now()``): a worker
  popped the task and claimed the row, then died or overran; finishing always clears the lease;
- it was dispatched before ``lost_before``: the janitor saw the queue lost (Redis wiped or
  unreachable), so every task handed over before that moment may be gone.

A statement that addresses job rows by id guards with ``(status = 'pending') IS TRUE``, never
the plain ``status = 'pending'`` (the same test: ``status`` is NOT NULL). The plain form implies
the predicate of the partial "due" indexes (``WHERE status = 'pending'``), and PostgreSQL then
weighs scanning that index, filtering every pending row for the id, against the primary key. It
picks the index whenever its statistics call it empty (a new or truncated table, or an ANALYZE
taken while nothing was pending), and then every claim, settle and record of a backlog of N rows
reads all N: a drain in N^2 (the partial indexes are for the sweeps above, which find due rows
by their due time). ``STILL_PENDING`` is that guard, for every repository to write in;
``tests/test_query_plans.py`` holds the hot statements to the primary key.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

# The guard of a statement that addresses job rows by id (see the module's docstring).
STILL_PENDING = "(status = 'pending') IS TRUE"

# table -> column holding the time the next step is due
DUE_COLUMN = {
    "payments": "next_check_at",
    "refunds": "next_check_at",
    "payment_operations": "next_check_at",
    "webhook_logs": "next_retry_at",
}


def due_for_dispatch(
    conn: psycopg.Connection,
    table: str,
    redispatch_after: float,
    limit: int,
    lost_before: datetime | None = None,
) -> tuple[list[str], int]:
    """Mark up to ``limit`` due rows of ``table`` as dispatched now: their ids, and how many of
    them had been dispatched before (the queue lost them: rescues). The others were waiting
    for their time (a retry, a deferred check: ``enqueued_at`` is cleared when a row is put off)."""
    due = DUE_COLUMN[table]  # KeyError for anything else: never interpolate free text
    rows = conn.execute(
        f"""WITH picked AS (
                 SELECT id, enqueued_at IS NOT NULL AS rescued FROM {table}
                  WHERE status = 'pending' AND {due} <= now()
                    AND (locked_until IS NULL OR locked_until < now())
                    AND (enqueued_at IS NULL
                         OR enqueued_at < now() - make_interval(secs => %(after)s)
                         OR enqueued_at < locked_until
                         OR enqueued_at < %(lost_before)s)
                  ORDER BY {due}
                  LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED)
            UPDATE {table} AS t SET enqueued_at = now()
              FROM picked WHERE t.id = picked.id
         RETURNING t.id, picked.rescued""",
        {"after": redispatch_after, "limit": limit, "lost_before": lost_before},
    ).fetchall()
    return [str(row["id"]) for row in rows], sum(1 for row in rows if row["rescued"])


def database_now(conn: psycopg.Connection) -> datetime:
    """The database's clock: the one every scheduling column is written with."""
    return conn.execute("SELECT now() AS now").fetchone()["now"]


# Job kinds whose rows a processor works on: claimed with a lease, deferred while pending.
PROCESSOR_JOBS = ("payments", "refunds", "payment_operations")


def _claim(table: str, match: str, columns: str) -> str:
    """The guarded UPDATE that leases due processor jobs of ``table`` (``match``: which rows)
    and counts the attempt; only fixed names are ever interpolated."""
    if table not in PROCESSOR_JOBS:
        raise KeyError(table)
    return f"""UPDATE {table}
               SET locked_until = now() + make_interval(secs => %s),
                   processor_attempts = processor_attempts + 1
             WHERE {match} AND {STILL_PENDING} AND next_check_at <= now()
               AND (locked_until IS NULL OR locked_until < now())
         RETURNING {columns}"""


def claim(
    conn: psycopg.Connection, table: str, row_id: str, lease_seconds: float, columns: str
) -> dict | None:
    """Take a processor job if it is pending, due, and nobody holds a live lease on it;
    count the attempt. ``columns`` is the repository's fixed column list (never free text)."""
    return conn.execute(_claim(table, "id = %s", columns), (lease_seconds, row_id)).fetchone()


def claim_many(
    conn: psycopg.Connection, table: str, row_ids: list[str], lease_seconds: float, columns: str
) -> dict[str, dict]:
    """``claim`` for several rows in one statement, all with the same lease: the claimed rows
    by id (those not ours to do are left out)."""
    query = _claim(table, "id = ANY(%s)", columns)
    rows = conn.execute(query, (lease_seconds, row_ids)).fetchall()
    return {str(row["id"]): row for row in rows}


def give_back(conn: psycopg.Connection, table: str, row_ids: list[str], lease: datetime) -> list:
    """Release claimed rows that were not worked on (a batch that ran out of time): the
    attempt the claim counted is taken back, the rows are due now and marked dispatched; the
    ids still pending, for the caller to enqueue."""
    if table not in PROCESSOR_JOBS:
        raise KeyError(table)
    rows = conn.execute(
        f"""UPDATE {table}
               SET locked_until = NULL, processor_attempts = processor_attempts - 1,
                   enqueued_at = now()
             WHERE id = ANY(%s) AND {STILL_PENDING} AND locked_until = %s
         RETURNING id""",
        (row_ids, lease),
    ).fetchall()
    return [str(row["id"]) for row in rows]


def defer(
    conn: psycopg.Connection,
    table: str,
    row_id: str,
    delay_seconds: float,
    reference: str | None,
    also_set: str = "",
    also_params: tuple = (),
) -> None:
    """The outcome is not known yet: release the lease and look again after ``delay_seconds``.
    ``also_set`` is a fixed SQL assignment of the caller's own (with ``also_params``)."""
    if table not in PROCESSOR_JOBS:
        raise KeyError(table)
    extra = f", {also_set}" if also_set else ""
    conn.execute(
        f"""UPDATE {table}
               SET next_check_at = now() + make_interval(secs => %s), locked_until = NULL,
                   enqueued_at = NULL,
                   processor_reference = coalesce(%s, processor_reference){extra}
             WHERE id = %s AND {STILL_PENDING}""",
        (delay_seconds, reference, *also_params, row_id),
    )


def clear_enqueued(conn: psycopg.Connection, table: str, ids: list[str]) -> None:
    """The enqueue failed: make these rows eligible for the next sweep at once."""
    if ids:
        DUE_COLUMN[table]  # validates the table name
        conn.execute(f"UPDATE {table} SET enqueued_at = NULL WHERE id = ANY(%s)", (ids,))
