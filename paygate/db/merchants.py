"""Merchants: lookups, webhook settings, seeding of the test merchant (their API keys:
api_keys.py)."""

from __future__ import annotations

from typing import Any

import psycopg

from ..config import TEST_MERCHANT_ID, TEST_MERCHANT_NAME, TEST_WEBHOOK_SECRET, Settings
from ..types import Merchant
from . import api_keys
from .rows import merchant_from_row

COLUMNS = (
    "id, name, email, api_key, webhook_url, webhook_secret, processor, "
    "password_hash, is_active, created_at, updated_at, previous_webhook_secret_until, "
    "fallback_processors"
)


def _one(cursor: psycopg.Cursor) -> Merchant | None:
    row = cursor.fetchone()
    return merchant_from_row(row) if row is not None else None


def by_credentials(conn: psycopg.Connection, api_key: str) -> Merchant | None:
    """The active merchant one of whose unrevoked keys is ``api_key`` (secret not checked)."""
    found = api_keys.credential(conn, api_key)
    return found[0] if found else None


def by_id(conn: psycopg.Connection, merchant_id: str) -> Merchant | None:
    return _one(conn.execute(f"SELECT {COLUMNS} FROM merchants WHERE id = %s", (merchant_id,)))


def by_email(conn: psycopg.Connection, email: str) -> Merchant | None:
    return _one(
        conn.execute(f"SELECT {COLUMNS} FROM merchants WHERE lower(email) = lower(%s)", (email,))
    )


def insert(conn: psycopg.Connection, **values: Any) -> Merchant | None:
    """Insert a merchant and its first API key unless its id, email or key exists; return the
    merchant inserted, or None.

    The key's secret arrives as ``secret_hash`` (a keyed hash, what the services pass) or, from
    callers that hold no server key (the seed, test fixtures), as ``api_secret``: then it is
    kept as a legacy plaintext that start-up (or the key's first use) replaces by its hash.
    """
    values.setdefault("processor", "test")
    values.setdefault("webhook_url", None)
    values.setdefault("secret_hash", None)
    values.setdefault("api_secret", None)
    return _one(
        conn.execute(
            f"""WITH m AS (
                    INSERT INTO merchants (id, name, email, api_key, webhook_url, webhook_secret,
                                           processor)
                    VALUES (%(id)s, %(name)s, %(email)s, %(api_key)s, %(webhook_url)s,
                            %(webhook_secret)s, %(processor)s)
                    ON CONFLICT DO NOTHING
                    RETURNING {COLUMNS}
                ), k AS (
                    INSERT INTO api_keys (id, merchant_id, api_key, secret_hash, legacy_secret)
                    SELECT gen_random_uuid(), m.id, m.api_key, %(secret_hash)s, %(api_secret)s
                      FROM m
                )
                SELECT * FROM m""",
            values,
        )
    )


def seed_test_merchant(conn: psycopg.Connection, settings: Settings) -> bool:
    """Create the contract's test merchant when missing. Returns True when it was created."""
    merchant = insert(
        conn,
        id=TEST_MERCHANT_ID,
        name=TEST_MERCHANT_NAME,
        email=settings.test_merchant_email,
        api_key=settings.test_api_key,
        api_secret=settings.test_api_secret,
        webhook_secret=TEST_WEBHOOK_SECRET,
    )
    return merchant is not None


def _update(
    conn: psycopg.Connection, merchant_id: str, assignments: str, params: dict[str, Any]
) -> Merchant | None:
    """``UPDATE merchants SET <assignments>`` for one merchant; the merchant after, or None."""
    return _one(
        conn.execute(
            f"""UPDATE merchants SET {assignments}, updated_at = now() WHERE id = %(id)s
             RETURNING {COLUMNS}""",
            {**params, "id": merchant_id},
        )
    )


def update_webhook(
    conn: psycopg.Connection, merchant_id: str, *, url: str | None, secret: str | None = None
) -> Merchant | None:
    return _update(
        conn,
        merchant_id,
        "webhook_url = %(url)s, webhook_secret = coalesce(%(secret)s, webhook_secret)",
        {"url": url, "secret": secret},
    )


def update_webhook_secret(
    conn: psycopg.Connection, merchant_id: str, secret: str
) -> Merchant | None:
    return _update(conn, merchant_id, "webhook_secret = %(secret)s", {"secret": secret})


def rotate_webhook_secret(
    conn: psycopg.Connection,
    merchant_id: str,
    secret: str,
    previous: str | None,
    overlap_seconds: float,
) -> Merchant | None:
    """Store a new (sealed) secret; ``previous`` (sealed, the one it replaces) keeps signing
    for ``overlap_seconds`` (none when 0 or when there was no secret). A rotation within the
    window replaces the previous secret: only the last two are ever valid."""
    keep = previous is not None and overlap_seconds > 0
    return _update(
        conn,
        merchant_id,
        """webhook_secret = %(secret)s, previous_webhook_secret = %(previous)s,
           previous_webhook_secret_until = CASE WHEN %(keep)s
               THEN now() + make_interval(secs => %(overlap)s) END""",
        {
            "secret": secret,
            "previous": previous if keep else None,
            "keep": keep,
            "overlap": float(overlap_seconds),
        },
    )


def stored_webhook_secrets(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every merchant's stored webhook secrets (current and previous) as they are, for the
    start-up pass that seals plaintext ones."""
    return conn.execute(
        """SELECT id, webhook_secret, previous_webhook_secret FROM merchants
            WHERE webhook_secret IS NOT NULL OR previous_webhook_secret IS NOT NULL"""
    ).fetchall()


def replace_stored_webhook_secrets(
    conn: psycopg.Connection,
    merchant_id: str,
    *,
    old: tuple[str | None, str | None],
    new: tuple[str | None, str | None],
) -> bool:
    """Swap (current, previous) from ``old`` to ``new`` unless the row changed meanwhile (a
    rotation between the read and this write wins). True when it was written."""
    row = conn.execute(
        """UPDATE merchants
              SET webhook_secret = %(new_current)s, previous_webhook_secret = %(new_previous)s
            WHERE id = %(id)s
              AND webhook_secret IS NOT DISTINCT FROM %(old_current)s
              AND previous_webhook_secret IS NOT DISTINCT FROM %(old_previous)s
        RETURNING id""",
        {
            "id": merchant_id,
            "old_current": old[0],
            "old_previous": old[1],
            "new_current": new[0],
            "new_previous": new[1],
        },
    ).fetchone()
    return row is not None


def set_processor(
    conn: psycopg.Connection,
    merchant_id: str,
    processor: str,
    fallback: tuple[str, ...] | None = None,
) -> Merchant | None:
    """Set the merchant's processor, and its fallback list when ``fallback`` is given (None
    keeps the list as it is; an empty tuple clears it)."""
    if fallback is None:
        return _update(conn, merchant_id, "processor = %(processor)s", {"processor": processor})
    return _update(
        conn,
        merchant_id,
        "processor = %(processor)s, fallback_processors = %(fallback)s",
        {"processor": processor, "fallback": list(fallback)},
    )


def set_password_hash(conn: psycopg.Connection, merchant_id: str, password_hash: str) -> None:
    _update(conn, merchant_id, "password_hash = %(hash)s", {"hash": password_hash})


def set_active(conn: psycopg.Connection, merchant_id: str, active: bool) -> Merchant | None:
    return _update(conn, merchant_id, "is_active = %(active)s", {"active": active})


def set_current_key(conn: psycopg.Connection, merchant_id: str, api_key: str) -> Merchant | None:
    return _update(conn, merchant_id, "api_key = %(key)s", {"key": api_key})


def all_merchants(conn: psycopg.Connection) -> list[Merchant]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM merchants ORDER BY created_at, email").fetchall()
    return [merchant_from_row(row) for row in rows]


def active_on_processor(conn: psycopg.Connection, processor: str) -> int:
    """How many active merchants route their payments to ``processor``."""
    row = conn.execute(
        "SELECT count(*) AS n FROM merchants WHERE is_active AND processor = %s", (processor,)
    ).fetchone()
    return row["n"]


def primary_webhook_secrets(conn: psycopg.Connection, merchant_id: str) -> dict | None:
    """What the merchant's primary webhook deliveries are signed with now, as stored (sealed):
    ``webhook_secret`` and, during a rotation's overlap, ``previous_webhook_secret`` (None
    outside its window), with ``webhook_url`` (the same columns ``webhooks.claim`` reads for a
    primary delivery). None for an unknown merchant."""
    return conn.execute(
        """SELECT webhook_url, webhook_secret,
                  CASE WHEN previous_webhook_secret_until > now()
                       THEN previous_webhook_secret END AS previous_webhook_secret
             FROM merchants WHERE id = %s""",
        (merchant_id,),
    ).fetchone()
