"""The dispatcher services call after commit: enqueue ids on Huey, never fail the caller.

If Redis is down the enqueue is logged and dropped; the janitor finds the row still due in the
database and dispatches it again, so an API call never fails because the queue did. After a
failed enqueue the dispatcher does not try again for ``ENQUEUE_PAUSE_SECONDS``: an unreachable
Redis costs one request one connect timeout, not every request several.
"""

from __future__ import annotations

import logging
import time
import uuid

from huey import Huey

from . import heartbeat, messages
from .tasks import Tasks

log = logging.getLogger(__name__)

ENQUEUE_PAUSE_SECONDS = 1.0


def _messages(task, calls: list[list[str]]) -> list[bytes]:
    """The queue messages of ``task(*args)`` for every ``args`` of ``calls``, as Huey's
    serializer would write them, without building a Task object per message (half the CPU of
    ``serialize_task``)."""
    name = task.huey._registry.task_to_string(task.task_class)
    return [messages.encode(str(uuid.uuid4()), name, args) for args in calls]


def _push(pipe, task, calls: list[list[str]]) -> None:
    """Queue ``task(*args)`` for every ``args`` of ``calls`` on ``pipe`` with one LPUSH on the
    task's own queue (Huey's own enqueue is one LPUSH per task, a round trip each); the
    messages and their order (first runs first) are the same."""
    pipe.lpush(task.huey.storage.queue_key, *_messages(task, calls))


class HueyDispatcher:
    """Enqueues ``tasks`` on ``huey`` (webhook deliveries on ``webhook_huey``, their own queue,
    when given). ``marker_key`` is kept in Redis next to the queue by the
    janitors: when it is gone, so is everything that was queued with it (the Redis was flushed,
    or restarted without its data). ``heartbeat_key`` holds the workers' heartbeats."""

    def __init__(
        self,
        huey: Huey,
        tasks: Tasks,
        *,
        webhook_huey: Huey | None = None,
        heartbeat_key: str,
        marker_key: str,
        heartbeat_ttl: float = 10.0,
    ):
        self.huey = huey
        self.webhook_huey = webhook_huey
        self.tasks = tasks
        self.heartbeat_key = heartbeat_key
        self.marker_key = marker_key
        self.heartbeat_ttl = heartbeat_ttl
        self._paused_until = 0.0

    def _enqueue(self, *batches: tuple) -> bool:
        """For each ``(task, calls)`` of ``batches``, ``task(*args)`` for every ``args`` of
        ``calls``: all of it in a single Redis round trip (a pipeline of one LPUSH per queue, not
        a transaction: a message queued without the others is still work the record says is
        due)."""
        if time.monotonic() < self._paused_until:
            return False
        batches = tuple((task, calls) for task, calls in batches if calls)
        try:
            pipe = None
            for task, calls in batches:
                if task.huey.immediate:  # tests: run them here, in order
                    for args in calls:
                        task(*args)
                    continue
                if pipe is None:  # both queues live on one Redis (``Queue``)
                    pipe = self.huey.storage.conn.pipeline(transaction=False)
                _push(pipe, task, calls)
            if pipe is not None:
                pipe.execute()
            return True
        except Exception as exc:
            first = time.monotonic() >= self._paused_until
            self._paused_until = time.monotonic() + ENQUEUE_PAUSE_SECONDS
            if first:
                log.warning(
                    "enqueue of %s failed (%s); the janitor will dispatch it from the database",
                    " and ".join(task.func.__name__ for task, _ in batches),
                    exc.__class__.__name__,
                )
            return False

    def payment(self, payment_id: str) -> bool:
        return self._enqueue((self.tasks.process_payment, [[payment_id]]))

    def refund(self, refund_id: str) -> bool:
        return self._enqueue((self.tasks.process_refund, [[refund_id]]))

    def payment_operation(self, payment_id: str) -> bool:
        """A capture or release of ``payment_id`` whose outcome is not known yet."""
        return self._enqueue((self.tasks.process_payment_operation, [[payment_id]]))

    def webhooks(self, log_ids: list) -> bool:
        """One Redis round trip for all of them (a settlement's event, a sweep's hundreds),
        one task each: the webhook threads take them in parallel."""
        if not log_ids:
            return True
        return self._enqueue((self.tasks.deliver_webhook, [[str(i)] for i in log_ids]))

    def created(self, payment_id: str, log_ids: list) -> bool:
        """A new payment's processing job and its creation events' deliveries, in one round
        trip; the events go as one task that delivers them in order, claimed together
        (``webhooks.deliver_batch``)."""
        return self._enqueue(
            (self.tasks.process_payment, [[payment_id]]),
            (self.tasks.deliver_webhook, [[str(i) for i in log_ids]] if log_ids else []),
        )

    def backlog(self) -> int | None:
        """Tasks waiting in the queues (payments' and webhooks'), or None when Redis cannot be
        asked (or an enqueue just failed and the dispatcher is pausing)."""
        if time.monotonic() < self._paused_until:
            return None
        try:
            webhooks = self.webhook_huey.pending_count() if self.webhook_huey is not None else 0
            return self.huey.pending_count() + webhooks
        except Exception:
            return None

    def queue_lost(self) -> bool | None:
        """True when Redis no longer holds the queue this gateway fed: the marker is missing.
        The marker is put back at once, so each loss is reported once across all workers.
        None when Redis cannot be asked."""
        try:
            return bool(self.huey.storage.conn.set(self.marker_key, "1", nx=True))
        except Exception:
            return None

    def queue_state(self) -> tuple[dict[str, int], int]:
        """({queue name: tasks waiting}, workers with a fresh heartbeat), in one round trip;
        raises when Redis cannot be asked (``/metrics`` reports the source down)."""
        conn = self.huey.storage.conn
        queues = [self.huey] + ([self.webhook_huey] if self.webhook_huey is not None else [])
        pipe = conn.pipeline(transaction=False)
        for huey in queues:
            pipe.llen(huey.storage.queue_key)
        pipe.zcount(self.heartbeat_key, time.time() - self.heartbeat_ttl, "+inf")
        *lengths, alive = pipe.execute()
        return {h.name: int(n) for h, n in zip(queues, lengths, strict=True)}, int(alive)

    def ping(self) -> bool:
        try:
            return bool(self.huey.storage.conn.ping())
        except Exception:
            return False

    def worker_running(self) -> bool:
        try:
            return heartbeat.running(self.huey.storage.conn, self.heartbeat_key, self.heartbeat_ttl)
        except Exception:
            return False
