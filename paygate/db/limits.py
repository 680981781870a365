"""Counting windows for the abuse limits (table ``rate_limits``, migration 006).

``hit`` counts one hit in each of several buckets with ONE upsert and answers every bucket's
count: the row lock of ``INSERT ... ON CONFLICT DO UPDATE`` serializes parallel hits, so exactly
``max_hits`` of them see a count within the limit, however many arrive at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

HIT = """
INSERT INTO rate_limits AS r (bucket, merchant_id, hits, max_hits, window_seconds, max_strikes,
                              window_end)
SELECT b.bucket, b.merchant_id, 1, b.max_hits, b.window_seconds, b.max_strikes,
       now() + make_interval(secs => b.window_seconds)
  FROM unnest(%(buckets)s::text[], %(merchants)s::uuid[], %(max_hits)s::int[],
              %(windows)s::float8[], %(max_strikes)s::int[])
       AS b(bucket, merchant_id, max_hits, window_seconds, max_strikes)
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN r.window_end > now() THEN r.hits + 1 ELSE 1 END,
    max_hits = excluded.max_hits,
    window_seconds = excluded.window_seconds,
    max_strikes = excluded.max_strikes,
    strikes = CASE
        WHEN r.window_end > now() THEN r.strikes
        -- the window that just ended was exceeded, and the next hit follows closely: back off
        WHEN r.hits > r.max_hits
             AND r.window_end > now() - make_interval(secs => excluded.window_seconds)
        THEN least(r.strikes + 1, excluded.max_strikes)
        ELSE 0 END,
    window_end = CASE
        WHEN r.window_end > now() THEN r.window_end
        WHEN r.hits > r.max_hits
             AND r.window_end > now() - make_interval(secs => excluded.window_seconds)
        THEN now() + make_interval(
            secs => excluded.window_seconds * 2 ^ least(r.strikes + 1, excluded.max_strikes))
        ELSE now() + make_interval(secs => excluded.window_seconds) END
RETURNING bucket, hits, max_hits,
          greatest(ceil(extract(epoch FROM window_end - now())), 1)::int AS retry_after
"""


@dataclass(frozen=True)
class Count:
    bucket: str
    hits: int
    max_hits: int
    retry_after: int  # seconds until the bucket's window ends

    @property
    def over(self) -> bool:
        return self.hits > self.max_hits


@dataclass(frozen=True)
class Bucket:
    key: str
    max_hits: int
    window_seconds: float
    max_strikes: int = 0
    merchant_id: str | None = None


def hit(conn: psycopg.Connection, buckets: list[Bucket]) -> list[Count]:
    """Count one hit in each bucket (distinct keys), atomically; the counts after it."""
    if not buckets:
        return []
    rows = conn.execute(
        HIT,
        {
            "buckets": [b.key for b in buckets],
            "merchants": [b.merchant_id for b in buckets],
            "max_hits": [b.max_hits for b in buckets],
            "windows": [float(b.window_seconds) for b in buckets],
            "max_strikes": [b.max_strikes for b in buckets],
        },
    ).fetchall()
    return [Count(r["bucket"], r["hits"], r["max_hits"], r["retry_after"]) for r in rows]


def forget(conn: psycopg.Connection, keys: list[str]) -> None:
    """Drop buckets (a successful sign-in clears what its own failures counted)."""
    conn.execute("DELETE FROM rate_limits WHERE bucket = ANY(%s)", (keys,))


def uncount(conn: psycopg.Connection, keys: list[str]) -> None:
    """Take one hit back from each bucket (a successful sign-in is not a guess)."""
    conn.execute(
        "UPDATE rate_limits SET hits = greatest(hits - 1, 0) WHERE bucket = ANY(%s)", (keys,)
    )


def prune(conn: psycopg.Connection) -> int:
    """Forget windows that ended over a day ago (the longest back-off is far shorter)."""
    return conn.execute(
        "DELETE FROM rate_limits WHERE window_end < now() - interval '1 day'"
    ).rowcount
