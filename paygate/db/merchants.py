"""Merchants: credentials, webhook settings, seeding of the test merchant."""

from __future__ import annotations

from typing import Any

import psycopg

from ..config import TEST_MERCHANT_ID, TEST_MERCHANT_NAME, TEST_WEBHOOK_SECRET, Settings

COLUMNS = (
    "id, name, email, api_key, api_secret, webhook_url, webhook_secret, processor, "
    "password_hash, is_active, created_at, updated_at"
)


def by_credentials(conn: psycopg.Connection, api_key: str) -> dict[str, Any] | None:
    return conn.execute(
        f"SELECT {COLUMNS} FROM merchants WHERE api_key = %s AND is_active", (api_key,)
    ).fetchone()


def by_id(conn: psycopg.Connection, merchant_id: str) -> dict[str, Any] | None:
    return conn.execute(f"SELECT {COLUMNS} FROM merchants WHERE id = %s", (merchant_id,)).fetchone()


def by_email(conn: psycopg.Connection, email: str) -> dict[str, Any] | None:
    return conn.execute(
        f"SELECT {COLUMNS} FROM merchants WHERE lower(email) = lower(%s)", (email,)
    ).fetchone()


def insert(conn: psycopg.Connection, **values: Any) -> dict[str, Any] | None:
    """Insert a merchant unless its id, email or key exists; return the row inserted, or None."""
    values.setdefault("processor", "test")
    values.setdefault("webhook_url", None)
    return conn.execute(
        f"""INSERT INTO merchants (id, name, email, api_key, api_secret, webhook_url,
                                   webhook_secret, processor)
            VALUES (%(id)s, %(name)s, %(email)s, %(api_key)s, %(api_secret)s, %(webhook_url)s,
                    %(webhook_secret)s, %(processor)s)
            ON CONFLICT DO NOTHING
            RETURNING {COLUMNS}""",
        values,
    ).fetchone()


def seed_test_merchant(conn: psycopg.Connection, settings: Settings) -> bool:
    """Create the contract's test merchant when missing. Returns True when it was created."""
    row = insert(
        conn,
        id=TEST_MERCHANT_ID,
        name=TEST_MERCHANT_NAME,
        email=settings.test_merchant_email,
        api_key=settings.test_api_key,
        api_secret=settings.test_api_secret,
        webhook_secret=TEST_WEBHOOK_SECRET,
    )
    return row is not None


def update_webhook(
    conn: psycopg.Connection, merchant_id: str, *, url: str | None, secret: str | None = None
) -> dict[str, Any] | None:
    return conn.execute(
        f"""UPDATE merchants
               SET webhook_url = %(url)s,
                   webhook_secret = coalesce(%(secret)s, webhook_secret),
                   updated_at = now()
             WHERE id = %(id)s
         RETURNING {COLUMNS}""",
        {"id": merchant_id, "url": url, "secret": secret},
    ).fetchone()


def update_webhook_secret(conn: psycopg.Connection, merchant_id: str, secret: str) -> dict | None:
    return conn.execute(
        f"""UPDATE merchants SET webhook_secret = %s, updated_at = now() WHERE id = %s
         RETURNING {COLUMNS}""",
        (secret, merchant_id),
    ).fetchone()


def set_processor(conn: psycopg.Connection, merchant_id: str, processor: str) -> dict | None:
    return conn.execute(
        f"""UPDATE merchants SET processor = %s, updated_at = now() WHERE id = %s
         RETURNING {COLUMNS}""",
        (processor, merchant_id),
    ).fetchone()


def set_password_hash(conn: psycopg.Connection, merchant_id: str, password_hash: str) -> None:
    conn.execute(
        "UPDATE merchants SET password_hash = %s, updated_at = now() WHERE id = %s",
        (password_hash, merchant_id),
    )
