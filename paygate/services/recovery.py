"""Finding work the queue may have lost: rows still due in the record that nobody holds.

Each returned row is marked ``enqueued_at = now()`` by the same statement that finds it, so
several janitors (one per worker) never dispatch the same row twice within the grace period.
"""

from __future__ import annotations

from ..db import idempotency as idempotency_repo
from ..db import scheduling
from . import Context

KINDS = ("payments", "refunds", "webhook_logs")


def due_work(ctx: Context, redispatch_after: float, limit: int = 500) -> dict[str, list[str]]:
    """Ids per table (``payments``, ``refunds``, ``webhook_logs``) to dispatch now."""
    with ctx.db.connection() as conn:
        return {
            table: scheduling.due_for_dispatch(conn, table, redispatch_after, limit)
            for table in KINDS
        }


def dispatch_failed(ctx: Context, table: str, ids: list[str]) -> None:
    with ctx.db.connection() as conn:
        scheduling.clear_enqueued(conn, table, ids)


def purge_expired_idempotency_keys(ctx: Context) -> int:
    with ctx.db.connection() as conn:
        return idempotency_repo.purge_expired(conn)
