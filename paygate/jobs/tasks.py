"""Huey tasks: ids in, a service call, nothing returned. Each is a no-op when run twice."""

from __future__ import annotations

from collections.abc import Callable

from huey import Huey

from ..services import Context, payments, refunds, webhooks


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
        def process_payment(payment_id: str) -> None:
            payments.process(context(), payment_id)

        @huey.task()
        def process_refund(refund_id: str) -> None:
            refunds.process(context(), refund_id)

        @huey.task()
        def process_payment_operation(payment_id: str) -> None:
            payments.process_operation(context(), payment_id)

        @(webhook_huey or huey).task()
        def deliver_webhook(log_id: str) -> None:
            webhooks.deliver(context(), str(log_id))

        self.process_payment = process_payment
        self.process_refund = process_refund
        self.process_payment_operation = process_payment_operation
        self.deliver_webhook = deliver_webhook
