"""Huey tasks: ids in, a service call, nothing returned. Each is a no-op when run twice."""

from __future__ import annotations

from collections.abc import Callable

from huey import Huey

from ..services import Context, payments, refunds, webhooks


class Tasks:
    """The three tasks, registered on ``huey``; each runs with the context ``context()`` gives.

    The functions are defined here, in this module, so their Huey names
    (``paygate.jobs.tasks.process_payment``, ...) are the same in the enqueuing process and the
    consumer.
    """

    def __init__(self, huey: Huey, context: Callable[[], Context]):
        @huey.task()
        def process_payment(payment_id: str) -> None:
            payments.process(context(), payment_id)

        @huey.task()
        def process_refund(refund_id: str) -> None:
            refunds.process(context(), refund_id)

        @huey.task()
        def deliver_webhook(log_id: str) -> None:
            webhooks.deliver(context(), str(log_id))

        self.process_payment = process_payment
        self.process_refund = process_refund
        self.deliver_webhook = deliver_webhook
