"""Huey tasks: ids in, a service call, nothing returned. Each is a no-op when run twice.

Each runs with its id as the log context (``paygate.logcontext``: JSON log lines carry it), and
a delivery's outcome counts in ``paygate_webhook_deliveries_total`` (in memory only)."""

from __future__ import annotations

from collections.abc import Callable

from huey import Huey

from .. import logcontext, metrics
from ..services import Context, payments, refunds, webhooks

# ``webhooks.deliver``'s answer -> the outcome label of paygate_webhook_deliveries_total.
DELIVERY_OUTCOMES = {
    "success": "delivered",
    "pending": "retrying",
    "failed": "failed",
    "deferred": "deferred",
    "no_url": "abandoned",
    "skipped": "skipped",
}


def _bound_to_payment(payment_id: str):
    return logcontext.bound(payment_id=payment_id)


class Tasks:
    """The tasks, registered on ``huey``; each runs with the context ``context()`` gives.

    The functions are defined here, in this module, so their Huey names
    (``paygate.jobs.tasks.process_payment``, ...) are the same in the enqueuing process and the
    consumer.

    Webhook deliveries are registered on ``webhook_huey`` (their own queue and consumer
    threads); without one (a single-queue caller), on ``huey``.
    """

    def __init__(
        self, huey: Huey, context: Callable[[], Context], *, webhook_huey: Huey | None = None
    ):
        @huey.task()
        def process_payment(*payment_ids: str) -> None:
            # One id, or the payments one thread took from a backlog together
            # (``payments.process_batch``: one claim for all).
            if len(payment_ids) == 1:
                with logcontext.bound(payment_id=payment_ids[0]):
                    payments.process(context(), str(payment_ids[0]))
            else:
                payments.process_batch(context(), [str(i) for i in payment_ids], _bound_to_payment)

        @huey.task()
        def process_refund(refund_id: str) -> None:
            with logcontext.bound(refund_id=refund_id):
                refunds.process(context(), refund_id)

        @huey.task()
        def process_payment_operation(payment_id: str) -> None:
            with logcontext.bound(payment_id=payment_id):
                payments.process_operation(context(), payment_id)

        @(webhook_huey or huey).task()
        def deliver_webhook(*log_ids: str) -> None:
            # One id (a settlement's event, a sweep's), or a payment's creation events in order,
            # claimed together (``webhooks.deliver_batch``).
            if len(log_ids) == 1:
                with logcontext.bound(webhook_id=log_ids[0]):
                    outcomes = [webhooks.deliver(context(), str(log_ids[0]))]
            else:
                outcomes = webhooks.deliver_batch(context(), [str(i) for i in log_ids])
            for outcome in outcomes:
                metrics.WEBHOOK_DELIVERIES.labels(DELIVERY_OUTCOMES.get(outcome, outcome)).inc()

        self.process_payment = process_payment
        self.process_refund = process_refund
        self.process_payment_operation = process_payment_operation
        self.deliver_webhook = deliver_webhook
