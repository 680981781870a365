"""The janitor: re-dispatches what the queue may have lost, from the record.

Huey pops a task before running it, so a killed worker or a flushed Redis loses tasks. Every
``janitor_interval_seconds`` each worker's janitor asks the database for rows that are due and
unleased and have not been dispatched recently, and enqueues them again. "Recently" is
``lost_after_seconds`` when the queue is empty (nothing can be waiting in it, so the work was
lost) and ``redispatch_after_seconds`` while a backlog is draining (it may still be queued).
Two cases do not wait at all (docs/operations.md has the resulting bounds):

- a row whose lease ran out was claimed by a worker that died (or overran): dispatched at once;
- when Redis lost the queue (its marker is gone: flushed, or restarted empty), could not be
  reached (enqueues meanwhile failed), or the database could not be reached (tasks meanwhile
  failed), every due, unleased row is dispatched again at the first sweep that works.

Dispatching twice is harmless: every task is a no-op once its row is no longer due.
"""

from __future__ import annotations

import logging
import threading
import time

from ..services import Context, recovery

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 300.0


_KIND_NAMES = {"webhook_logs": "webhook deliveries", "payment_operations": "captures/releases"}


def describe(counts: dict[str, int]) -> str:
    """A sweep's counts for a log line: "2 payments, 0 refunds, 0 captures/releases, ..."."""
    return ", ".join(f"{n} {_KIND_NAMES.get(kind, kind)}" for kind, n in counts.items())


class Janitor:
    def __init__(self, ctx: Context, dispatcher):
        self.ctx = ctx
        self.dispatcher = dispatcher
        self._last_purge = 0.0
        self._queue_suspect = False  # Redis was away: what was enqueued meanwhile is gone
        self._failing = False

    def sweep(self) -> dict[str, int]:
        settings = self.ctx.settings
        backlog = self.dispatcher.backlog()
        if backlog is None:
            self._queue_suspect = True
            return {}  # Redis is away: dispatching now would only fail
        if self.dispatcher.queue_lost() or self._queue_suspect:
            found = self._redispatch_everything_due()
        else:
            after = settings.redispatch_after_seconds if backlog else settings.lost_after_seconds
            found = self._dispatch(recovery.due_work(self.ctx, after))
        if time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            recovery.purge_expired_idempotency_keys(self.ctx)
        return found

    def _redispatch_everything_due(self) -> dict[str, int]:
        self._queue_suspect = False
        total = dict.fromkeys(recovery.KINDS, 0)
        after = self.ctx.settings.redispatch_after_seconds
        for batch in recovery.all_due_work(self.ctx, after):
            for table, count in self._dispatch(batch).items():
                total[table] += count
            if self._queue_suspect:  # an enqueue failed: Redis went away again
                break
        counts = describe(total)
        if any(total.values()):
            log.warning(
                "the queue may have lost tasks (Redis was unreachable, flushed or restarted "
                "empty): dispatched all due work again (%s)",
                counts,
            )
        else:  # a new Redis, or one that lost nothing that mattered: nothing to worry about
            log.info("the queue is new or was emptied; nothing was due (%s)", counts)
        return total

    def _dispatch(self, work: dict[str, list[str]]) -> dict[str, int]:
        send = {
            "payments": lambda ids: all([self.dispatcher.payment(i) for i in ids]),
            "refunds": lambda ids: all([self.dispatcher.refund(i) for i in ids]),
            "payment_operations": lambda ids: all(
                [self.dispatcher.payment_operation(i) for i in ids]
            ),
            "webhook_logs": self.dispatcher.webhooks,
        }
        for table, ids in work.items():
            if ids and not send[table](ids):
                recovery.dispatch_failed(self.ctx, table, ids)  # the next sweep tries again
                self._queue_suspect = True
        return {table: len(ids) for table, ids in work.items()}

    def run(self, stopping: threading.Event) -> None:
        interval = self.ctx.settings.janitor_interval_seconds
        while not stopping.is_set():
            try:
                found = self.sweep()
                if self._failing:
                    self._failing = False
                    log.info("janitor sweeps work again")
                if any(found.values()):
                    log.info("janitor dispatched due work again: %s", describe(found))
            except Exception as exc:  # database away: the next sweep tries again
                # Tasks fail the same way meanwhile, each lost once popped: when the sweeps
                # work again, dispatch everything due, not only what looks stale.
                self._queue_suspect = True
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "janitor sweep failed (%s); retrying every %.2f s",
                        exc.__class__.__name__,
                        interval,
                    )
            stopping.wait(interval)

    def start(self, stopping: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, args=(stopping,), name="paygate-janitor", daemon=True
        )
        thread.start()
        return thread
