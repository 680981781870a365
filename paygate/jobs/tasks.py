"""Huey tasks: ids in, a service call, nothing returned. Each is a no-op when run twice."""

from __future__ import annotations

from ..services import payments, refunds, webhooks
from . import huey
from .runtime import context


@huey.task()
def process_payment(payment_id: str) -> None:
    payments.process(context(), payment_id)


@huey.task()
def process_refund(refund_id: str) -> None:
    refunds.process(context(), refund_id)


@huey.task()
def deliver_webhook(log_id: str) -> None:
    webhooks.deliver(context(), str(log_id))
