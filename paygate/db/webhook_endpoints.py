"""Webhook endpoints: a merchant's further delivery targets beyond the primary ``webhook_url``.

A deleted endpoint keeps its row (``deleted_at`` set, ``enabled`` false), so the delivery logs
that name it keep their endpoint and URL; nothing here lists, reads or changes it again.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..types import WebhookEndpoint
from .idempotency import COMPLETE_CTE

COLUMNS = (
    "id, merchant_id, url, events, description, enabled, created_at, updated_at, "
    "secret_sealed, previous_secret_sealed, previous_secret_until"
)
LIVE = "deleted_at IS NULL"


def endpoint_from_row(row: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=str(row["id"]),
        merchant_id=str(row["merchant_id"]),
        url=row["url"],
        events=tuple(row["events"] or ()),
        description=row["description"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        secret_sealed=row["secret_sealed"],
        previous_secret_sealed=row["previous_secret_sealed"],
        previous_secret_until=row["previous_secret_until"],
    )


def _one(cursor: psycopg.Cursor) -> WebhookEndpoint | None:
    row = cursor.fetchone()
    return endpoint_from_row(row) if row is not None else None


def list_for_merchant(conn: psycopg.Connection, merchant_id: str) -> list[WebhookEndpoint]:
    """The merchant's endpoints (not the deleted ones), oldest first."""
    rows = conn.execute(
        f"""SELECT {COLUMNS} FROM webhook_endpoints WHERE merchant_id = %s AND {LIVE}
             ORDER BY created_at, id""",
        (merchant_id,),
    ).fetchall()
    return [endpoint_from_row(row) for row in rows]


def get(conn: psycopg.Connection, endpoint_id: str, merchant_id: str) -> WebhookEndpoint | None:
    """One of the merchant's endpoints; None when it is another's, deleted or unknown."""
    return _one(
        conn.execute(
            f"SELECT {COLUMNS} FROM webhook_endpoints WHERE id = %s AND merchant_id = %s AND {LIVE}",
            (endpoint_id, merchant_id),
        )
    )


def create(
    conn: psycopg.Connection, values: dict[str, Any], *, limit: int
) -> WebhookEndpoint | None:
    """Insert an endpoint unless the merchant already has ``limit`` of them (None then).

    ``values``: id, merchant_id, url, events, description, enabled, secret_sealed. The
    merchant's row is locked first, so two creations at once cannot both pass the count."""
    conn.execute("SELECT 1 FROM merchants WHERE id = %s FOR UPDATE", (values["merchant_id"],))
    return _one(
        conn.execute(
            f"""INSERT INTO webhook_endpoints (id, merchant_id, url, events, description, enabled,
                                                secret_sealed)
                SELECT %(id)s, %(merchant_id)s, %(url)s, %(events)s, %(description)s,
                       %(enabled)s, %(secret_sealed)s
                 WHERE (SELECT count(*) FROM webhook_endpoints
                         WHERE merchant_id = %(merchant_id)s AND {LIVE}) < %(limit)s
             RETURNING {COLUMNS}""",
            {**values, "limit": limit},
        )
    )


UPDATABLE = ("url", "events", "description", "enabled")


def update(
    conn: psycopg.Connection, endpoint_id: str, merchant_id: str, changes: dict[str, Any]
) -> WebhookEndpoint | None:
    """Set the given fields (names from ``UPDATABLE``) of a live endpoint."""
    sets = ", ".join(f"{name} = %({name})s" for name in UPDATABLE if name in changes)
    return _one(
        conn.execute(
            f"""UPDATE webhook_endpoints SET {sets}, updated_at = now()
                 WHERE id = %(id)s AND merchant_id = %(merchant_id)s AND {LIVE}
             RETURNING {COLUMNS}""",
            {**changes, "id": endpoint_id, "merchant_id": merchant_id},
        )
    )


def rotate_secret(
    conn: psycopg.Connection,
    endpoint_id: str,
    merchant_id: str,
    secret: str,
    previous: str | None,
    overlap_seconds: float,
) -> WebhookEndpoint | None:
    """Store a new (sealed) secret; ``previous`` (sealed, the one it replaces) keeps signing
    for ``overlap_seconds`` (none when 0 or None). Only the last two are ever valid."""
    keep = previous is not None and overlap_seconds > 0
    return _one(
        conn.execute(
            f"""UPDATE webhook_endpoints
                   SET secret_sealed = %(secret)s, previous_secret_sealed = %(previous)s,
                       previous_secret_until = CASE WHEN %(keep)s
                           THEN now() + make_interval(secs => %(overlap)s) END,
                       updated_at = now()
                 WHERE id = %(id)s AND merchant_id = %(merchant_id)s AND {LIVE}
             RETURNING {COLUMNS}""",
            {
                "secret": secret,
                "previous": previous if keep else None,
                "keep": keep,
                "overlap": float(overlap_seconds),
                "id": endpoint_id,
                "merchant_id": merchant_id,
            },
        )
    )


def delete(conn: psycopg.Connection, endpoint_id: str, merchant_id: str) -> bool:
    """Soft-delete: no new delivery goes to it, its pending ones end at their next attempt,
    its logs stay. False when there was no such live endpoint."""
    row = conn.execute(
        f"""UPDATE webhook_endpoints
               SET deleted_at = now(), enabled = FALSE, updated_at = now()
             WHERE id = %s AND merchant_id = %s AND {LIVE}
         RETURNING id""",
        (endpoint_id, merchant_id),
    ).fetchone()
    return row is not None


def complete_key(conn: psycopg.Connection, merchant_id: str, idem: dict[str, Any]) -> None:
    """Complete the creation's Idempotency-Key (``idem_*`` parameters) in its transaction."""
    conn.execute(f"WITH {COMPLETE_CTE} SELECT 1", {**idem, "merchant_id": merchant_id})
