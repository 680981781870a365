"""Finding work the queue may have lost: rows still due in the record that nobody holds.

Each returned row is marked ``enqueued_at = now()`` by the same statement that finds it, so
several janitors (one per worker) never dispatch the same row twice within the grace period.
"""

from __future__ import annotations

from .. import metrics
from ..db import idempotency as idempotency_repo
from ..db import scheduling
from . import Context

KINDS = ("payments", "refunds", "payment_operations", "webhook_logs")
BATCH = 500


def due_work(ctx: Context, redispatch_after: float, limit: int = BATCH) -> dict[str, list[str]]:
    """Ids per table (``payments``, ``refunds``, ``payment_operations`` (captures and
    releases whose outcome is not known), ``webhook_logs``) to dispatch now. Those the queue
    had been given before and lost count in ``paygate_janitor_rescues_total``."""
    with ctx.db.connection() as conn:
        return {
            table: _counted(
                table, scheduling.due_for_dispatch(conn, table, redispatch_after, limit)
            )
            for table in KINDS
        }


def _counted(table: str, found: tuple[list[str], int]) -> list[str]:
    ids, rescued = found
    if rescued:
        metrics.JANITOR_RESCUES.labels(table).inc(rescued)
    return ids


def all_due_work(ctx: Context, redispatch_after: float, limit: int = BATCH):
    """After the queue was lost: every due, unleased row, whenever it was last dispatched.

    Yields batches (a dict like ``due_work``'s) until nothing dispatched before the loss is left;
    the caller dispatches each batch before asking for the next."""
    with ctx.db.connection() as conn:
        lost_before = scheduling.database_now(conn)
    while True:
        with ctx.db.connection() as conn:
            batch = {
                table: _counted(
                    table,
                    scheduling.due_for_dispatch(
                        conn, table, redispatch_after, limit, lost_before=lost_before
                    ),
                )
                for table in KINDS
            }
        yield batch
        if all(len(ids) < limit for ids in batch.values()):
            return


def dispatch_failed(ctx: Context, table: str, ids: list[str]) -> None:
    with ctx.db.connection() as conn:
        scheduling.clear_enqueued(conn, table, ids)


def purge_expired_idempotency_keys(ctx: Context) -> int:
    with ctx.db.connection() as conn:
        return idempotency_repo.purge_expired(conn)
