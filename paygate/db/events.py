"""The event log (``events``, written by the outbox) read in order, and each observer's
bookkeeping (``observer_positions``).

Reading without skipping: ``events.seq`` is taken when a row is inserted, but transactions
commit in any order, so a reader that saw seq 12 committed may later find seq 11 appear (its
transaction was still running). ``read_after`` therefore returns only rows whose writing
transaction is older than every transaction still running (``txid <
pg_snapshot_xmin(pg_current_snapshot())``), and reads them in the order ``(txid, seq)``, not
``seq`` alone: every transaction that can still commit an event has a ``txid`` at or above that
bound, so it can only add rows after everything read so far, and a reader that remembers the
``(txid, seq)`` of the last event it took misses nothing. Ordering by ``seq`` alone would skip:
a transaction that got its id first (an earlier write) may take its ``seq`` after a younger
transaction that is still running, and be read before it. Within one transaction, and for the
successive events of one payment or refund (each from a transaction that began after the one
before committed), ``(txid, seq)`` is the order they were recorded in.

The price is latency: an event waits until every transaction that started writing before it
ended (a long writing transaction anywhere on the server holds every observer back meanwhile).

Positions: an observer's row holds the ``seq`` of the last event it finished (``position``), its
failures (``attempts``, ``last_error``, ``next_attempt_at``) and a lease (``leased_by`` until
``leased_until``); every write is guarded by the lease, so of several workers only the holder
moves an observer on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import psycopg

from ..types import Event

# Rows older than every running transaction: nothing below them can still appear.
SETTLED = "txid < pg_snapshot_xmin(pg_current_snapshot())"


class LogPosition(NamedTuple):
    """Where an event sits in the log's reading order: its writing transaction, its ``seq``."""

    txid: int
    seq: int


START = LogPosition(0, 0)


@dataclass(frozen=True)
class Logged:
    """An event read from the log, with its position there."""

    position: LogPosition
    event: Event


def read_after(conn: psycopg.Connection, position: LogPosition, limit: int) -> list[Logged]:
    """Up to ``limit`` events after ``position``, in the log's order, none of which can be
    overtaken by an event still being written."""
    rows = conn.execute(
        f"""SELECT txid::text::bigint AS txid, seq, id, merchant_id, event, resource_id, body,
                   created_at
              FROM events
             WHERE (txid, seq) > (%(txid)s::text::xid8, %(seq)s) AND {SETTLED}
             ORDER BY txid, seq
             LIMIT %(limit)s""",
        {"txid": position.txid, "seq": position.seq, "limit": limit},
    ).fetchall()
    return [Logged(LogPosition(row["txid"], row["seq"]), event_from_row(row)) for row in rows]


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


HEAD = f"""SELECT txid, seq FROM events WHERE {SETTLED} ORDER BY txid DESC, seq DESC LIMIT 1"""


def head(conn: psycopg.Connection) -> LogPosition:
    """The position of the last settled event (``START`` for an empty log): where a new
    observer starts, so it receives every event recorded from then on."""
    row = conn.execute(f"SELECT h.txid::text::bigint AS txid, h.seq FROM ({HEAD}) h").fetchone()
    return LogPosition(row["txid"], row["seq"]) if row else START


LAST = "SELECT txid, seq FROM events ORDER BY txid DESC, seq DESC LIMIT 1"


def last_recorded(conn: psycopg.Connection) -> LogPosition:
    """The position of the last committed event, settled or not (``START`` for an empty log).
    Once ``head`` has reached it, ``read_after`` returns every event committed before this
    call: ``txid < xmin`` holds for the last one, hence for every one before it."""
    row = conn.execute(f"SELECT l.txid::text::bigint AS txid, l.seq FROM ({LAST}) l").fetchone()
    return LogPosition(row["txid"], row["seq"]) if row else START


@dataclass(frozen=True)
class ObserverPosition:
    """One observer's bookkeeping, and (from ``positions``) how far behind it is."""

    observer: str
    position_txid: int
    position: int  # the seq of the last event taken
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
    "observer, position_txid::text::bigint AS position_txid, position, attempts, next_attempt_at, last_error, last_error_at, "
    "failing_event_id, delivered, leased_by, leased_until, updated_at"
)


def log_position(state: ObserverPosition) -> LogPosition:
    return LogPosition(state.position_txid, state.position)


def _position(row: dict) -> ObserverPosition:
    failing = row["failing_event_id"]
    return ObserverPosition(**{**row, "failing_event_id": str(failing) if failing else None})


def claim(
    conn: psycopg.Connection, observer: str, holder: str, lease_seconds: float
) -> ObserverPosition | None:
    """Take (or renew) the lease on ``observer`` for ``holder``; None while another holder's
    lease runs. An observer seen for the first time starts at the ``head`` of the log."""
    conn.execute(
        f"""INSERT INTO observer_positions (observer, position_txid, position)
            SELECT %(observer)s, coalesce(h.txid, '0'::xid8), coalesce(h.seq, 0)
              FROM (SELECT 1) one LEFT JOIN ({HEAD}) h ON TRUE
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
    conn: psycopg.Connection,
    observer: str,
    holder: str,
    position: LogPosition,
    lease_seconds: float,
) -> bool:
    """``holder`` finished the event at ``position``: move there, clear the failure, renew the
    lease. False when the lease was lost (another worker took the observer over)."""
    row = conn.execute(
        """UPDATE observer_positions
              SET position_txid = %(txid)s::text::xid8, position = %(seq)s,
                  attempts = 0, next_attempt_at = now(),
                  last_error = NULL, last_error_at = NULL, failing_event_id = NULL,
                  delivered = delivered + 1, updated_at = now(),
                  leased_until = now() + make_interval(secs => %(lease)s)
            WHERE observer = %(observer)s AND leased_by = %(holder)s
              AND (position_txid, position) < (%(txid)s::text::xid8, %(seq)s)
        RETURNING observer""",
        {
            "observer": observer,
            "holder": holder,
            "txid": position.txid,
            "seq": position.seq,
            "lease": lease_seconds,
        },
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


def start_at(conn: psycopg.Connection, observer: str, position: LogPosition) -> None:
    """Start ``observer`` at ``position``, or move it up to ``position`` when it is behind
    (the events in between are never handed to it; a failure held on one of them is cleared).
    An observer already past ``position`` keeps its place. The kit's in-process gateway uses it
    so that observers receive only the events of the gateway they are fed by."""
    conn.execute(
        """INSERT INTO observer_positions (observer, position_txid, position)
           VALUES (%(observer)s, %(txid)s::text::xid8, %(seq)s)
           ON CONFLICT (observer) DO UPDATE
              SET position_txid = excluded.position_txid, position = excluded.position,
                  attempts = 0, next_attempt_at = now(), last_error = NULL,
                  last_error_at = NULL, failing_event_id = NULL, updated_at = now()
            WHERE (observer_positions.position_txid, observer_positions.position)
                  < (excluded.position_txid, excluded.position)""",
        {"observer": observer, "txid": position.txid, "seq": position.seq},
    )


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
        f"""SELECT o.*, lag.lag_events, lag.oldest_pending_at
              FROM (SELECT {COLUMNS} FROM observer_positions) o
              CROSS JOIN LATERAL (
                  SELECT count(*) AS lag_events, min(e.created_at) AS oldest_pending_at
                    FROM events e
                   WHERE (e.txid, e.seq) > (o.position_txid::text::xid8, o.position)) lag
             ORDER BY o.observer"""
    ).fetchall()
    return [_position(row) for row in rows]


# -- one merchant's feed (``GET /api/v1/events/feed``, ``paygate listen``) ---------------------
# A page reads at most this many events of every merchant past the cursor and keeps the
# merchant's own: the bounded scan walks ``idx_events_txid_seq`` (no index by merchant, which
# every payment would pay for), and the cursor moves past other merchants' events, so a quiet
# merchant's next poll starts where this one stopped scanning.
FEED_SCAN_LIMIT = 1000


@dataclass(frozen=True)
class FeedPage:
    """The merchant's events after a position, and the position the next page starts from."""

    events: list[Event]
    position: LogPosition
    has_more: bool


def feed_after(
    conn: psycopg.Connection,
    merchant_id: str,
    position: LogPosition,
    limit: int,
    scan_limit: int = FEED_SCAN_LIMIT,
) -> FeedPage:
    """Up to ``limit`` of the merchant's events after ``position``, in the log's order and
    settled like ``read_after`` (none can be overtaken by one still being written). One
    statement: the ``scan_limit`` settled events after ``position`` (every merchant's, by the
    index), the merchant's first ``limit + 1`` of them with their bodies, and the last position
    scanned. The next position is the last event returned when the merchant has more, else the
    last one scanned."""
    rows = conn.execute(
        f"""WITH scanned AS (
                SELECT txid, seq, merchant_id FROM events
                 WHERE (txid, seq) > (%(txid)s::text::xid8, %(seq)s) AND {SETTLED}
                 ORDER BY txid, seq
                 LIMIT %(scan)s
            ), own AS (
                SELECT s.txid, s.seq FROM scanned s
                 WHERE s.merchant_id = %(merchant_id)s::uuid
                 ORDER BY s.txid, s.seq
                 LIMIT %(limit)s + 1
            ), last AS (
                SELECT txid, seq, (SELECT count(*) FROM scanned) AS scanned
                  FROM scanned ORDER BY txid DESC, seq DESC LIMIT 1
            )
            SELECT FALSE AS is_last, o.txid::text::bigint AS txid, o.seq, e.id,
                   e.merchant_id, e.event, e.resource_id, e.body, e.created_at, 0::bigint AS scanned
              FROM own o JOIN events e ON e.seq = o.seq
            UNION ALL
            SELECT TRUE, l.txid::text::bigint, l.seq, NULL, NULL, NULL, NULL, NULL, NULL, l.scanned
              FROM last l
             ORDER BY is_last, txid, seq""",
        {
            "txid": position.txid,
            "seq": position.seq,
            "merchant_id": merchant_id,
            "limit": limit,
            "scan": scan_limit,
        },
    ).fetchall()
    own = [row for row in rows if not row["is_last"]]
    last = next((row for row in rows if row["is_last"]), None)
    if len(own) > limit:
        kept = own[:limit]
        return FeedPage(
            [event_from_row(row) for row in kept],
            LogPosition(kept[-1]["txid"], kept[-1]["seq"]),
            True,
        )
    if last is None:  # nothing settled after ``position``
        return FeedPage([], position, False)
    return FeedPage(
        [event_from_row(row) for row in own],
        LogPosition(last["txid"], last["seq"]),
        last["scanned"] >= scan_limit,
    )
