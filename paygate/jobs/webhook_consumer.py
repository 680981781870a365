"""The webhook deliveries' own consumer, inside every ``paygate worker``.

Deliveries are enqueued on their own queue (``<queue_name>-webhooks``, ``Queue.webhook_huey``)
and consumed here by ``PAYGATE_WEBHOOK_CONCURRENCY`` threads of their own, next to the main
consumer's ``PAYGATE_WORKER_CONCURRENCY`` threads that settle payments and refunds: an endpoint
that hangs holds webhook threads only (and at most ``PAYGATE_WEBHOOK_ENDPOINT_CONCURRENCY`` of
each worker's, ``webhook_circuits.gate``), never one a payment needs.

The main consumer's ``run()`` owns the process's signals and main loop; this one is started
with Huey's ``Consumer.start()`` (its threads, without installing signal handlers) and a small
thread that replaces a dead worker thread. It stops taking deliveries the moment the main one
stops taking tasks (``stop_taking``, on SIGTERM/SIGINT), and its running deliveries (each bounded
by ``PAYGATE_WEBHOOK_TIMEOUT``) are waited for once the main one returns.
"""

from __future__ import annotations

import logging
import threading
import time

from huey.consumer import Consumer

from ..services import Context
from .queue import Queue

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 10.0


class WebhookConsumer:
    def __init__(self, consumer: Consumer, threads: int):
        self.consumer = consumer
        self.threads = threads
        self._health: threading.Thread | None = None

    def start(self) -> None:
        # Huey's start() would install its signal handlers over the main consumer's.
        self.consumer._set_signal_handlers = lambda: None
        self.consumer.start()
        self._health = threading.Thread(
            target=self._check_health, name="paygate-webhook-consumer", daemon=True
        )
        self._health.start()
        log.info("webhook consumer started: %d threads", self.threads)

    def _check_health(self) -> None:
        flag = self.consumer.stop_flag
        while not flag.wait(HEALTH_CHECK_SECONDS):
            try:
                self.consumer.check_worker_health()
            except Exception:  # never let the checker die over one bad check
                log.exception("webhook consumer health check failed")

    def stop_taking(self) -> None:
        """Take no new delivery (running ones go on); ``stop()`` then waits for them."""
        self.consumer.stop_flag.set()

    def stop(self, wait: float | None = None, *, timeout: float | None = None) -> None:
        """Stop taking deliveries; wait for the running ones up to ``wait`` seconds (None: each
        is bounded by the webhook timeout, so Huey's own shutdown timeout). One not finished by
        then dies with the process: its row keeps its lease and is delivered again after it."""
        if wait is None:
            self.consumer.stop(graceful=True)
        else:
            self.consumer.stop_flag.set()
            deadline = time.monotonic() + wait
            for _, thread in self.consumer.worker_threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            running = sum(1 for _, t in self.consumer.worker_threads if t.is_alive())
            if running and (timeout if timeout is not None else wait) <= 0:
                # Stopping at once: every thread counts, idle ones too, so no count is given.
                log.warning(
                    "webhook deliveries still running stop now: each is delivered again when "
                    "its lease ends"
                )
            elif running:
                log.warning(
                    "%d webhook delivery(ies) still running after %.0f s; stopping anyway: they "
                    "are delivered again when their lease ends",
                    running,
                    wait if timeout is None else timeout,
                )
        if self._health is not None:
            self._health.join(1.0)


def start(ctx: Context, queue: Queue, flags: dict, threads: int | None = None) -> WebhookConsumer:
    """Consume ``queue.webhook_huey`` with ``threads`` (``PAYGATE_WEBHOOK_CONCURRENCY``)
    threads and the main consumer's ``flags``; returns it running (stop it with ``stop()``)."""
    settings = ctx.settings
    count = threads or settings.webhook_concurrency
    consumer = queue.webhook_huey.create_consumer(
        workers=count,
        shutdown_timeout=settings.webhook_timeout_seconds + 1,
        **flags,
    )
    running = WebhookConsumer(consumer, count)
    running.start()
    return running
