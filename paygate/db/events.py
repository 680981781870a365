"""The event log (``events``, written by the outbox) read in order, and each observer's
bookkeeping (``observer_positions``).

Reading without skipping: ``events.seq`` is taken when a row is inserted, but transactions
commit in any order, so a reader that saw seq 12 committed may later find seq 11 appear (its
transaction was still running). ``read_after`` therefore returns only rows whose writing
transaction is older than every transaction still running (``txid <
pg_snapshot_xmin(pg_current_snapshot())``): once such a row is visible, no row with a lower
``seq`` can appear any more, and a reader that remembers the last ``seq`` it took misses nothing.
The price is latency: an event waits until every transaction that started before it ended (a
long transaction anywhere on the server holds every observer back while it runs).

Positions: an observer's row holds the ``seq`` of the last event it finished (``position``), its
failures (``attempts``, ``last_error``, ``next_attempt_at``) and a lease (``leased_by`` until
``leased_until``); every write is guarded by the lease, so of several workers only the holder
moves an observer on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import psycopg

from ..types import Event

# Rows older than every running transaction: nothing below them can still appear.
SETTLED = "txid < pg_snapshot_xmin(pg_current_snapshot())"


def read_after(conn: psycopg.Connection, position: int, limit: int) -> list[Event]:
    """Up to ``limit`` events with ``seq > position``, in ``seq`` order, none of which can be
    overtaken by an event still being written."""
    rows = conn.execute(
        f"""SELECT seq, id, merchant_id, event, resource_id, body, created_at
              FROM events
             WHERE seq > %(position)s AND {SETTLED}
             ORDER BY seq
             LIMIT %(limit)s""",
        {"position": position, "limit": limit},
    ).fetchall()
    return [event_from_row(row) for row in rows]


def event_from_row(row: dict) -> Event:
    body = row["body"]
    return Event(
        id=str(row["id"]),
        type=row["event"],
        merchant_id=str(row["merchant_id"]),
        resource_id=row["resource_id"],
        created_at=row["created_at"],
        data=json.loads(body).get("data", {}),
        body=body.encode("utf-8"),
        sequence=row["seq"],
    )


def head(conn: psycopg.Connection) -> int:
    """The ``seq`` of the newest settled event (0 for an empty log): where a new observer
    starts, so it receives every event recorded from then on."""
    row = conn.execute(
        f"SELECT seq FROM events WHERE {SETTLED} ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return row["seq"] if row else 0


@dataclass(frozen=True)
class ObserverPosition:
    """One observer's bookkeeping, and (from ``positions``) how far behind it is."""

    observer: str
    position: int
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_error_at: datetime | None
    failing_event_id: str | None
    delivered: int
    leased_by: str | None
    leased_until: datetime | None
    updated_at: datetime
    lag_events: int = 0
    oldest_pending_at: datetime | None = None
    retry_in: float = 0.0  # (from ``claim``) seconds until the failing event is tried again


COLUMNS = (
    "observer, position, attempts, next_attempt_at, last_error, last_error_at, "
    "failing_event_id, delivered, leased_by, leased_until, updated_at"
)


def _position(row: dict) -> ObserverPosition:
    failing = row["failing_event_id"]
    return ObserverPosition(**{**row, "failing_event_id": str(failing) if failing else None})


def claim(
    conn: psycopg.Connection, observer: str, holder: str, lease_seconds: float
) -> ObserverPosition | None:
    """Take (or renew) the lease on ``observer`` for ``holder``; None while another holder's
    lease runs. An observer seen for the first time starts at the ``head`` of the log."""
    conn.execute(
        f"""INSERT INTO observer_positions (observer, position)
            VALUES (%(observer)s,
                    coalesce((SELECT seq FROM events WHERE {SETTLED}
                               ORDER BY seq DESC LIMIT 1), 0))
            ON CONFLICT (observer) DO NOTHING""",
        {"observer": observer},
    )
    row = conn.execute(
        f"""UPDATE observer_positions
               SET leased_by = %(holder)s,
                   leased_until = now() + make_interval(secs => %(lease)s)
             WHERE observer = %(observer)s
               AND (leased_by IS NULL OR leased_by = %(holder)s OR leased_until < now())
         RETURNING {COLUMNS},
                   greatest(extract(epoch FROM next_attempt_at - now()), 0)::float8 AS retry_in""",
        {"observer": observer, "holder": holder, "lease": lease_seconds},
    ).fetchone()
    return _position(row) if row else None


def advance(
    conn: psycopg.Connection, observer: str, holder: str, seq: int, lease_seconds: float
) -> bool:
    """``holder`` finished the event at ``seq``: move the position there, clear the failure,
    renew the lease. False when the lease was lost (another worker took the observer over)."""
    row = conn.execute(
        """UPDATE observer_positions
              SET position = %(seq)s, attempts = 0, next_attempt_at = now(),
                  last_error = NULL, last_error_at = NULL, failing_event_id = NULL,
                  delivered = delivered + 1, updated_at = now(),
                  leased_until = now() + make_interval(secs => %(lease)s)
            WHERE observer = %(observer)s AND leased_by = %(holder)s AND position < %(seq)s
        RETURNING observer""",
        {"observer": observer, "holder": holder, "seq": seq, "lease": lease_seconds},
    ).fetchone()
    return row is not None


def record_failure(
    conn: psycopg.Connection,
    observer: str,
    holder: str,
    event_id: str,
    error: str,
    delay_seconds: float,
    lease_seconds: float,
) -> ObserverPosition | None:
    """``holder`` failed on ``event_id``: count the attempt, keep the error, and hold the
    observer back for ``delay_seconds``. None when the lease was lost."""
    row = conn.execute(
        f"""UPDATE observer_positions
               SET attempts = attempts + 1, last_error = %(error)s, last_error_at = now(),
                   failing_event_id = %(event_id)s::uuid, updated_at = now(),
                   next_attempt_at = now() + make_interval(secs => %(delay)s),
                   leased_until = now() + make_interval(secs => %(lease)s)
             WHERE observer = %(observer)s AND leased_by = %(holder)s
         RETURNING {COLUMNS}""",
        {
            "observer": observer,
            "holder": holder,
            "event_id": event_id,
            "error": error,
            "delay": delay_seconds,
            "lease": lease_seconds,
        },
    ).fetchone()
    return _position(row) if row else None


def release(conn: psycopg.Connection, observer: str, holder: str) -> None:
    """Give the lease up (a stopping worker), so another worker takes over at once."""
    conn.execute(
        """UPDATE observer_positions SET leased_by = NULL, leased_until = NULL
            WHERE observer = %(observer)s AND leased_by = %(holder)s""",
        {"observer": observer, "holder": holder},
    )


def positions(conn: psycopg.Connection) -> list[ObserverPosition]:
    """Every observer's bookkeeping with its lag: the events recorded after its position and
    the moment of the oldest of them."""
    rows = conn.execute(
        f"""SELECT {", ".join(f"o.{c.strip()}" for c in COLUMNS.split(","))},
                   lag.lag_events, lag.oldest_pending_at
              FROM observer_positions o
              CROSS JOIN LATERAL (
                  SELECT count(*) AS lag_events, min(e.created_at) AS oldest_pending_at
                    FROM events e WHERE e.seq > o.position) lag
             ORDER BY o.observer"""
    ).fetchall()
    return [_position(row) for row in rows]
