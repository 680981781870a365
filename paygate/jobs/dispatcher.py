"""The dispatcher services call after commit: enqueue ids on Huey, never fail the caller.

If Redis is down the enqueue is logged and dropped; the janitor finds the row still due in the
database and dispatches it again, so an API call never fails because the queue did.
"""

from __future__ import annotations

import logging

from . import heartbeat, huey, tasks

log = logging.getLogger(__name__)


class HueyDispatcher:
    def __init__(self, heartbeat_ttl: float = 10.0):
        self.heartbeat_ttl = heartbeat_ttl

    def _enqueue(self, task, *args) -> bool:
        try:
            task(*args)
            return True
        except Exception as exc:
            log.warning(
                "enqueue of %s failed (%s); the janitor will dispatch it",
                task.name,
                exc.__class__.__name__,
            )
            return False

    def payment(self, payment_id: str) -> bool:
        return self._enqueue(tasks.process_payment, payment_id)

    def refund(self, refund_id: str) -> bool:
        return self._enqueue(tasks.process_refund, refund_id)

    def webhooks(self, log_ids: list) -> bool:
        ok = True
        for log_id in log_ids:
            ok = self._enqueue(tasks.deliver_webhook, str(log_id)) and ok
        return ok

    def backlog(self) -> int | None:
        """Tasks waiting in the queue, or None when Redis cannot be asked."""
        try:
            return huey.pending_count()
        except Exception:
            return None

    def ping(self) -> bool:
        try:
            return bool(huey.storage.conn.ping())
        except Exception:
            return False

    def worker_running(self) -> bool:
        try:
            return heartbeat.running(huey.storage.conn, self.heartbeat_ttl)
        except Exception:
            return False
