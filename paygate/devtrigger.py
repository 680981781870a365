"""``paygate trigger EVENT``: create the real orders, payments and refunds that make a webhook
event fire on the gateway, through the Python client, and wait for it (docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from paygate_client import Paygate, PaygateError, WaitTimeoutError

from . import events
from .config import Settings
from .devcli import OK, REFUSED, TIMED_OUT, client_for, money, positive_int, report, run, seconds

# Magic test values of the test processor (docs/api.md) that force each outcome.
UPI = {"success": "success@test", "failure": "failure@test"}
CARDS = {"success": "4242424242424242", "failure": "4000000000000002"}


def _card(outcome: str) -> dict[str, Any]:
    return {
        "number": CARDS[outcome],
        "expiry_month": "12",
        "expiry_year": f"{(datetime.now(UTC).year + 1) % 100:02d}",
        "cvv": "123",
        "holder_name": "Paygate CLI",
    }


class Trigger:
    """Creates what makes one event fire, and waits for it; ``steps`` records what it made."""

    def __init__(self, client: Paygate, args: argparse.Namespace) -> None:
        self.client = client
        self.args = args
        self.steps: list[tuple[str, dict[str, Any]]] = []

    def record(self, kind: str, obj: Any) -> Any:
        self.steps.append((kind, obj.raw))
        return obj

    def payment(self, outcome: str, wait: bool) -> Any:
        order = self.record("order", self.client.orders.create(amount=self.args.amount))
        if self.args.method == "card":
            created = self.client.payments.create(order.id, "card", card=_card(outcome))
        else:
            created = self.client.payments.create(order.id, "upi", vpa=UPI[outcome])
        self.record("payment", created)
        if not wait:
            return created
        return self.record("payment", self.client.payments.wait(created.id, self.args.timeout))

    def succeeded(self) -> Any:
        payment = self.payment("success", wait=True)
        if payment.status != "success":
            raise Unfired(f"payment {payment.id} ended {payment.status}, not success")
        return payment

    def fire(self, event: str) -> None:
        if event in (events.PAYMENT_CREATED, events.PAYMENT_PENDING):
            self.payment("success", wait=False)
        elif event == events.PAYMENT_SUCCESS:
            self.succeeded()
        elif event == events.PAYMENT_FAILED:
            payment = self.payment("failure", wait=True)
            if payment.status != "failed":
                raise Unfired(f"payment {payment.id} ended {payment.status}, not failed")
        elif event == events.PAYMENT_CAPTURED:
            payment = self.succeeded()
            captured = self.record("payment", self.client.payments.capture(payment.id))
            if captured.capture_status == "pending":  # the processor confirms it later
                self.record("payment", self._captured(captured.id))
        elif event in (events.REFUND_CREATED, events.REFUND_PROCESSED):
            payment = self.succeeded()
            refund = self.record(
                "refund",
                self.client.refunds.create(payment.id, payment.amount, reason="paygate trigger"),
            )
            if event == events.REFUND_PROCESSED:
                refund = self.record(
                    "refund", self.client.refunds.wait(refund.id, self.args.timeout)
                )
                if refund.status != "processed":
                    raise Unfired(f"refund {refund.id} ended {refund.status}, not processed")
        else:  # webhook.test
            self.steps.append(("webhook_test", self.client.webhooks.test()))

    def _captured(self, payment_id: str) -> Any:
        deadline = time.monotonic() + self.args.timeout
        while True:
            payment = self.client.payments.get(payment_id)
            if payment.capture_status != "pending":
                return payment
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(f"capture of {payment_id} still pending", payment)
            time.sleep(0.5)


class Unfired(Exception):
    """The objects were made but ended in a state that does not fire the event."""


TRIGGERS = (
    events.PAYMENT_CREATED,
    events.PAYMENT_PENDING,
    events.PAYMENT_SUCCESS,
    events.PAYMENT_FAILED,
    events.PAYMENT_CAPTURED,
    events.REFUND_CREATED,
    events.REFUND_PROCESSED,
    events.WEBHOOK_TEST,
)


def cmd_trigger(args: argparse.Namespace, settings: Settings) -> int:
    trigger = Trigger(client_for(args, settings), args)
    problem, code = None, OK
    try:
        trigger.fire(args.event)
    except Unfired as exc:
        problem, code = str(exc), REFUSED
    except WaitTimeoutError as exc:
        trigger.record(_kind_of(exc.last), exc.last)
        problem, code = f"timed out: {exc}", TIMED_OUT
    except PaygateError as error:
        if args.event == events.WEBHOOK_TEST and error.http_status == 400:
            error.description += (
                " (webhook.test goes to the merchant's webhook_url: set one on the dashboard "
                "or with POST /api/v1/webhooks/config)"
            )
        code = report(error)
        if not trigger.steps:
            return code
    if args.json:
        document: dict[str, Any] = {"event": args.event, "fired": code == OK}
        for kind, raw in trigger.steps:
            document[kind] = raw  # the latest state of each object
        if problem:
            document["error"] = problem
        print(json.dumps(document, indent=2))
    else:
        _print_steps(trigger.steps)
        if code == OK:
            print(f"{args.event} fired")
    if problem:
        print(f"paygate: {args.event} did not fire: {problem}", file=sys.stderr)
    return code


def _kind_of(obj: Any) -> str:
    return "refund" if hasattr(obj, "payment_id") else "payment"


def _print_steps(steps: list[tuple[str, dict[str, Any]]]) -> None:
    for kind, raw in steps:
        if kind == "order":
            print(f"order    {raw['id']}  {money(raw['amount'], raw.get('currency', 'INR'))}")
        elif kind == "payment":
            how = raw.get("vpa") or f"{raw.get('card_network')} **** {raw.get('card_last4')}"
            captured = " captured" if raw.get("captured") else ""
            print(f"payment  {raw['id']}  {raw['method']} {how}  {raw['status']}{captured}")
        elif kind == "refund":
            print(f"refund   {raw['id']}  {money(raw['amount'])}  {raw['status']}")
        else:
            print(f"webhook  {raw.get('id')}  {raw.get('event')}  {raw.get('status')}")


def add_parser(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``trigger`` with ``devcli.command_factory``'s ``command``."""
    trigger = command(
        "trigger",
        "create the real objects that make a webhook event fire, and wait for it",
        "Create the orders, payments and refunds that make EVENT fire on the gateway (the "
        "test processor's magic values force the outcome), wait for it, and print what was "
        "made. With `paygate listen` running, the events arrive at your --forward-to URL.",
        "events:\n  " + "\n  ".join(TRIGGERS) + "\n\nexamples:\n"
        "  paygate trigger payment.success\n"
        "  paygate trigger payment.failed --method card\n"
        "  paygate trigger refund.processed --amount 25000 --json",
    )
    trigger.add_argument("event", metavar="EVENT", choices=TRIGGERS, help="one of the events below")
    trigger.add_argument(
        "--amount", type=positive_int, default=50000, help="paise (default 50000: ₹500.00)"
    )
    trigger.add_argument("--method", choices=("upi", "card"), default="upi")
    trigger.add_argument(
        "--timeout", type=seconds, default=30.0, help="seconds to wait for the outcome (30)"
    )
    trigger.set_defaults(func=run(cmd_trigger))
