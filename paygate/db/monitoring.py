"""What the record says about the queues, for ``/metrics`` at scrape time: pending jobs per kind
(due, running, scheduled), the oldest due one's age, webhook circuits by state. Read-only, on
the pending rows' partial indexes, under a statement timeout: a slow database slows no scrape
for long, and a failure is the caller's ``paygate_metrics_source_up 0``."""

from __future__ import annotations

import psycopg

from .scheduling import DUE_COLUMN

STATEMENT_TIMEOUT_MS = 1000


def _kind(table: str) -> str:
    due = DUE_COLUMN[table]  # the known tables only: never free text
    return f"""
    SELECT '{table}' AS kind,
           count(*) FILTER (WHERE {due} <= now() AND NOT leased) AS due,
           count(*) FILTER (WHERE leased) AS running,
           count(*) FILTER (WHERE {due} > now() AND NOT leased) AS scheduled,
           coalesce(extract(epoch FROM now() - min({due}) FILTER (WHERE {due} <= now())), 0)
               AS oldest_due_seconds
      FROM (SELECT {due}, coalesce(locked_until >= now(), FALSE) AS leased
              FROM {table} WHERE status = 'pending') AS pending"""


JOBS = "\nUNION ALL\n".join(_kind(table) for table in DUE_COLUMN)
CIRCUITS = "SELECT state, count(*) AS circuits FROM webhook_circuits GROUP BY state"


def queue_state(conn: psycopg.Connection) -> tuple[list[dict], list[dict]]:
    """(one row per job kind: ``kind, due, running, scheduled, oldest_due_seconds``; one row per
    circuit state: ``state, circuits``), read in one transaction under the statement timeout."""
    with conn.transaction():
        conn.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        jobs = conn.execute(JOBS).fetchall()
        circuits = conn.execute(CIRCUITS).fetchall()
    return jobs, circuits
