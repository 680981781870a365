"""API keys: the credential lookup of every API request, issuing, rotating, listing.

Secrets are stored as keyed hashes made by the services (``secret_hash``); ``legacy_secret`` is
a plaintext from before migration 004 (or from a caller without the server key) waiting to be
hashed, see ``legacy`` and ``replace_legacy``.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from ..types import ApiKey, Merchant
from .rows import api_key_from_row, merchant_from_row

KEY_COLUMNS = (
    "id, merchant_id, api_key, secret_hash, created_at, last_used_at, expires_at, revoked_at"
)


def credential(
    conn: psycopg.Connection, api_key: str
) -> tuple[Merchant, ApiKey, str | None] | None:
    """The active merchant of an unrevoked key, the key, and its legacy plaintext secret (None
    once hashed). Expiry is left to the caller, which compares it with its own clock."""
    row = conn.execute(
        """SELECT k.id AS key_id, k.api_key AS key_api_key, k.secret_hash, k.legacy_secret,
                  k.created_at AS key_created_at, k.last_used_at, k.expires_at, k.revoked_at,
                  m.*
             FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
            WHERE k.api_key = %s AND k.revoked_at IS NULL AND m.is_active""",
        (api_key,),
    ).fetchone()
    if row is None:
        return None
    key = ApiKey(
        id=str(row["key_id"]),
        merchant_id=str(row["id"]),
        api_key=row["key_api_key"],
        secret_hash=row["secret_hash"],
        created_at=row["key_created_at"],
        last_used_at=row["last_used_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )
    return merchant_from_row(row), key, row["legacy_secret"]


def insert(
    conn: psycopg.Connection, key_id: str, merchant_id: str, api_key: str, secret_hash: str
) -> ApiKey:
    row = conn.execute(
        f"""INSERT INTO api_keys (id, merchant_id, api_key, secret_hash)
            VALUES (%s, %s, %s, %s) RETURNING {KEY_COLUMNS}""",
        (key_id, merchant_id, api_key, secret_hash),
    ).fetchone()
    return api_key_from_row(row)


def retire_live(
    conn: psycopg.Connection, merchant_id: str, *, keep: str, at: datetime, revoke: bool
) -> list[ApiKey]:
    """Every live key of the merchant but ``keep`` stops working at ``at`` (or is revoked now):
    the overlap of a rotation. A key that expires sooner keeps its earlier expiry."""
    rows = conn.execute(
        f"""UPDATE api_keys
               SET expires_at = %(at)s,
                   revoked_at = CASE WHEN %(revoke)s THEN %(at)s ELSE revoked_at END
             WHERE merchant_id = %(merchant)s AND id <> %(keep)s AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > %(at)s)
         RETURNING {KEY_COLUMNS}""",
        {"merchant": merchant_id, "keep": keep, "at": at, "revoke": revoke},
    ).fetchall()
    return [api_key_from_row(row) for row in rows]


def revoke(conn: psycopg.Connection, merchant_id: str, api_key: str) -> ApiKey | None:
    """Revoke one live key of the merchant now; the key revoked, or None (no such live key)."""
    row = conn.execute(
        f"""UPDATE api_keys SET revoked_at = now(), expires_at = LEAST(expires_at, now())
             WHERE merchant_id = %s AND api_key = %s AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > now())
         RETURNING {KEY_COLUMNS}""",
        (merchant_id, api_key),
    ).fetchone()
    return api_key_from_row(row) if row is not None else None


def of_merchant(conn: psycopg.Connection, merchant_id: str) -> list[ApiKey]:
    """The merchant's keys, newest first."""
    rows = conn.execute(
        f"""SELECT {KEY_COLUMNS} FROM api_keys WHERE merchant_id = %s
             ORDER BY created_at DESC, id""",
        (merchant_id,),
    ).fetchall()
    return [api_key_from_row(row) for row in rows]


def touch(conn: psycopg.Connection, key_id: str, every_seconds: float) -> None:
    """Record a use, unless one was recorded in the last ``every_seconds`` (by any process)."""
    conn.execute(
        """UPDATE api_keys SET last_used_at = now()
            WHERE id = %s AND (last_used_at IS NULL
                               OR last_used_at < now() - make_interval(secs => %s))""",
        (key_id, every_seconds),
    )


def legacy(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(key id, plaintext secret) of every key whose secret is not hashed yet."""
    rows = conn.execute(
        "SELECT id, legacy_secret FROM api_keys WHERE legacy_secret IS NOT NULL"
    ).fetchall()
    return [(str(row["id"]), row["legacy_secret"]) for row in rows]


def replace_legacy(conn: psycopg.Connection, key_id: str, secret_hash: str) -> None:
    """Store the hash of a key's legacy secret and forget the plaintext."""
    conn.execute(
        """UPDATE api_keys SET secret_hash = %s, legacy_secret = NULL
            WHERE id = %s AND legacy_secret IS NOT NULL""",
        (secret_hash, key_id),
    )
