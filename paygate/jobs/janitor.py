"""The janitor: re-dispatches what the queue may have lost, from the record.

Huey pops a task before running it, so a killed worker or a flushed Redis loses tasks. Every
``janitor_interval_seconds`` each worker's janitor asks the database for rows that are due and
unleased and have not been dispatched recently, and enqueues them again. "Recently" is
``lost_after_seconds`` when the queue is empty (nothing can be waiting in it, so the work was
lost) and ``redispatch_after_seconds`` while a backlog is draining (it may still be queued).
"""

from __future__ import annotations

import logging
import threading
import time

from ..services import Context, recovery

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 300.0


class Janitor:
    def __init__(self, ctx: Context, dispatcher):
        self.ctx = ctx
        self.dispatcher = dispatcher
        self._last_purge = 0.0

    def sweep(self) -> dict[str, int]:
        settings = self.ctx.settings
        backlog = self.dispatcher.backlog()
        if backlog is None:
            return {}  # Redis is away: dispatching now would only fail
        after = settings.redispatch_after_seconds if backlog else settings.lost_after_seconds
        work = recovery.due_work(self.ctx, after)
        send = {
            "payments": lambda ids: all([self.dispatcher.payment(i) for i in ids]),
            "refunds": lambda ids: all([self.dispatcher.refund(i) for i in ids]),
            "webhook_logs": self.dispatcher.webhooks,
        }
        for table, ids in work.items():
            if ids and not send[table](ids):
                recovery.dispatch_failed(self.ctx, table, ids)
        if time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            recovery.purge_expired_idempotency_keys(self.ctx)
        return {table: len(ids) for table, ids in work.items()}

    def run(self, stopping: threading.Event) -> None:
        interval = self.ctx.settings.janitor_interval_seconds
        while not stopping.is_set():
            try:
                found = self.sweep()
                if any(found.values()):
                    log.info("janitor dispatched %s", found)
            except Exception as exc:  # database away: the next sweep tries again
                log.warning("janitor sweep failed: %s", exc.__class__.__name__)
            stopping.wait(interval)

    def start(self, stopping: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, args=(stopping,), name="paygate-janitor", daemon=True
        )
        thread.start()
        return thread
