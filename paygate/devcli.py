"""The developer CLI: ``paygate listen``, ``trigger``, ``payments`` and ``refunds`` (docs/cli.md).

They talk HTTP to a running gateway through the Python client (``paygate_client``), as the
merchant whose key they are given: no database, no Redis, nothing started. ``paygate.cli``
registers them (``command_factory``, ``add_commands``); ``listen`` is ``paygate.devlisten``,
``trigger`` ``paygate.devtrigger``.

Exit status: 0 done, 1 the gateway refused (its code and description on stderr), 2 the CLI
itself refused the command line before asking the gateway (argparse, and the values checked
here: ``--limit``, ``--offset``, ``--from``/``--to``, amounts), 3 the gateway could not be
reached or failed (5xx), 4 timed out waiting (``trigger``), 130/143/129 ``listen`` stopped by
SIGINT (Ctrl-C)/SIGTERM/SIGHUP.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from paygate_client import (
    APIConnectionError,
    APIError,
    Paygate,
    PaygateError,
    ServiceUnavailableError,
)

from .config import Settings
from .moments import parse_moment
from .types import Money

OK, REFUSED, USAGE, UNREACHABLE, TIMED_OUT, INTERRUPTED = 0, 1, 2, 3, 4, 130
DEV_COMMANDS = ("listen", "trigger", "payments", "refunds")
# What GET /api/v1/payments takes (docs/api.md, "Payments"): a value beyond is refused here.
MAX_AMOUNT = 100_000_000_000
MAX_OFFSET = 10_000_000
EXIT_CODES = (
    "exit status: 0 done, 1 the gateway refused (code and description on stderr), 2 the CLI "
    "refused the command line (an unknown option, a bad value; nothing was sent), 3 gateway "
    "unreachable or failing (5xx), 4 timed out waiting, 130 Ctrl-C (143 SIGTERM, 129 SIGHUP)"
)
CREDENTIALS_HELP = (
    "Credentials: --api-key/--api-secret, else PAYGATE_API_KEY/PAYGATE_API_SECRET, else the "
    "test merchant's key_test_abc123/secret_test_xyz789 (what `paygate up` seeds), against "
    "--api-url, else PAYGATE_API_URL, else http://localhost:8000. Nothing here needs "
    "DATABASE_URL or REDIS_URL."
)


# -- the client and its errors ------------------------------------------------------------------


def client_for(args: argparse.Namespace, settings: Settings, retries: int = 2) -> Paygate:
    """The API client these options and this environment name (see CREDENTIALS_HELP)."""
    return Paygate(
        args.api_key or settings.cli_api_key or settings.test_api_key,
        args.api_secret or settings.cli_api_secret or settings.test_api_secret,
        base_url=args.api_url or settings.api_url,
        max_retries=retries,
    )


def exit_code(error: PaygateError) -> int:
    """3 when no answer came or the gateway failed (5xx, 503), else 1 (it refused)."""
    if isinstance(error, APIConnectionError | APIError | ServiceUnavailableError):
        return UNREACHABLE
    return REFUSED


def report(error: PaygateError) -> int:
    """One stderr line for an API error; its exit status."""
    code = exit_code(error)
    if code == UNREACHABLE and isinstance(error, APIConnectionError):
        print(f"paygate: cannot reach the gateway: {error.description}", file=sys.stderr)
    else:
        status = f" (HTTP {error.http_status})" if error.http_status else ""
        print(f"paygate: {error.code}: {error.description}{status}", file=sys.stderr)
    return code


def run(command: Callable[[argparse.Namespace, Settings], int]):
    """A dev command with API errors turned into their exit status."""

    def wrapped(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return command(args, settings)
        except PaygateError as error:
            return report(error)

    return wrapped


def money(amount: int, currency: str = "INR") -> str:
    return str(Money(amount, currency))


def moment(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


# -- paygate payments / refunds -----------------------------------------------------------------

PAYMENT_COLUMNS = ("id", "order_id", "amount", "refunded", "method", "status", "created_at")
# `payments get`, in this order; money in rupees; a field the answer lacks (or null) is left out.
PAYMENT_FIELDS = (
    "id",
    "order_id",
    "amount",
    "currency",
    "method",
    "vpa",
    "card_network",
    "card_last4",
    "status",
    "next_action",
    "captured",
    "amount_captured",
    "capture_status",
    "capture_error_code",
    "capture_error_description",
    "released_at",
    "amount_refunded",
    "error_code",
    "error_description",
    "processor",
    "processor_reference",
    "created_at",
    "updated_at",
)
MONEY_FIELDS = ("amount", "amount_captured", "amount_refunded")


def payment_row(payment: Any) -> tuple[str, ...]:
    status = payment.status + (" captured" if payment.captured else "")
    refunded = payment.amount_refunded
    return (
        payment.id,
        payment.order_id,
        money(payment.amount, payment.currency),
        money(refunded, payment.currency) if refunded else "-",
        payment.method,
        status,
        moment(payment.created_at),
    )


def payment_lines(raw: dict[str, Any]) -> list[str]:
    """``payments get`` as text: one ``name: value`` line per field the payment has, with the
    routing's processor and the buyer's ``next_action`` url flattened."""
    shown = dict(raw)
    shown["processor"] = (raw.get("routing") or {}).get("processor")
    shown["next_action"] = (raw.get("next_action") or {}).get("url")
    lines = []
    for name in PAYMENT_FIELDS:
        value = shown.get(name)
        if value is None:
            continue
        if name in MONEY_FIELDS:
            value = money(value, raw.get("currency", "INR"))
        lines.append(f"{name + ':':27}{value}")
    return lines


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def cmd_payments(args: argparse.Namespace, settings: Settings) -> int:
    client = client_for(args, settings)
    if args.action == "get":
        payment = client.payments.get(args.payment_id)
        if args.json:
            print(json.dumps(payment.raw, indent=2))
        else:
            print("\n".join(payment_lines(payment.raw)))
        return OK
    if None not in (args.amount_min, args.amount_max) and args.amount_min > args.amount_max:
        print("paygate payments list: error: --amount-min is above --amount-max", file=sys.stderr)
        return USAGE
    filters = {
        "status": args.status,
        "method": args.method,
        "order_id": args.order_id,
        "from_": args.from_,
        "to": args.to,
        "search": args.search,
        "amount_min": args.amount_min,
        "amount_max": args.amount_max,
    }
    if args.all:
        found = list(client.payments.list_all(**filters))
        total = len(found)
    else:
        page = client.payments.list(limit=args.limit, offset=args.offset, **filters)
        found, total = page.data, page.total
    if args.json:
        print(json.dumps({"data": [p.raw for p in found], "total": total}, indent=2))
        return OK
    if not found:
        print("no payments match")
        return OK
    print(table(PAYMENT_COLUMNS, [payment_row(p) for p in found]))
    if len(found) < total:
        print(f"{len(found)} of {total} (--offset, --limit up to 100, or --all for the rest)")
    return OK


def cmd_refunds(args: argparse.Namespace, settings: Settings) -> int:
    client = client_for(args, settings)
    refund = client.refunds.create(args.payment_id, args.amount, reason=args.reason)
    if args.json:
        print(json.dumps(refund.raw, indent=2))
    else:
        print(
            f"refund {refund.id} of {money(refund.amount)} on {refund.payment_id}: {refund.status}"
        )
    return OK


# -- registration -------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number above 0: {text!r}")
    return value


def bounded_int(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (what the API takes), so an
    obvious mistake is a usage error (exit 2) before anything is sent."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"not a whole number {low}-{high}{unit}: {text!r}")
        return value

    return parse


def when(text: str) -> str:
    """An argparse type: unix seconds or an ISO-8601 date or date-time, read as the API reads
    ``from``/``to`` (docs/api.md, "Payments"); passed on as written."""
    try:
        parse_moment(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a moment: {text!r} (unix seconds, or ISO-8601 like 2024-01-15 or "
            "2024-01-15T10:30:00Z)"
        ) from None
    return text.strip()


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds above 0: {text!r}")
    return value


def common_options(*, inner: bool = False) -> argparse.ArgumentParser:
    """``--api-url``, ``--api-key``, ``--api-secret`` and ``--json``. ``inner``: for an action
    under a group (``payments list``), whose options default to nothing at all, so that the
    same option given before the action (``paygate payments --json list``) is not overwritten
    by the action's default: argparse copies the action's namespace over the group's."""
    common = argparse.ArgumentParser(add_help=False)
    unset = {"default": argparse.SUPPRESS} if inner else {}
    group = common.add_argument_group("gateway and credentials")
    group.add_argument(
        "--api-url",
        help="the gateway's API (default PAYGATE_API_URL, else http://localhost:8000)",
        **unset,
    )
    group.add_argument(
        "--api-key",
        help="merchant API key (default PAYGATE_API_KEY, else key_test_abc123)",
        **unset,
    )
    group.add_argument(
        "--api-secret",
        help="merchant API secret (default PAYGATE_API_SECRET, else secret_test_xyz789; "
        "prefer the variable: arguments show in `ps`)",
        **unset,
    )
    common.add_argument("--json", action="store_true", help="machine-readable output", **unset)
    return common


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written, their long lines wrapped (indented lines are
    examples and lists: kept as they are)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        width = min(width, 100)
        return "\n".join(
            line if line.startswith(" ") or len(line) <= width else textwrap.fill(line, width)
            for line in text.splitlines()
        )


def _formatter(prog: str) -> argparse.HelpFormatter:
    return _Formatter(prog, max_help_position=32)


def command_factory(sub: argparse._SubParsersAction) -> Callable[..., argparse.ArgumentParser]:
    """What adds one developer command to ``paygate``'s subcommands: the common options, the
    credentials paragraph and the exit statuses come with it."""
    common = common_options()

    def command(name: str, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=f"{description}\n\n{CREDENTIALS_HELP}",
            epilog=f"{epilog}\n\n{EXIT_CODES}",
            formatter_class=_formatter,
            parents=[common],
        )

    return command


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``payments`` and ``refunds`` with ``command_factory``'s ``command``
    (``paygate.devlisten`` registers ``listen``, ``paygate.devtrigger`` ``trigger``)."""
    # The group's own options (before the action) and the action's (after it) both work.
    common = common_options(inner=True)

    payments = command(
        "payments",
        "list payments or show one",
        "The merchant's payments, newest first.",
        "examples:\n"
        "  paygate payments list --status success --limit 20\n"
        "  paygate payments list --method upi --from 2024-01-01 --to 2024-01-31 --all --json\n"
        "  paygate payments list --search order_NXhj3kL9pQ2rT5vW\n"
        "  paygate payments get pay_NXhj3kL9pQ2rT5vW",
    )
    actions = payments.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list",
        help="a table of payments (filters as GET /api/v1/payments)",
        parents=[common],
        formatter_class=_formatter,
        description=f"A table of the merchant's payments, newest first.\n\n{CREDENTIALS_HELP}",
        epilog="example: paygate payments list --status failed --from 2024-01-15\n\n" + EXIT_CODES,
    )
    listing.add_argument("--status", choices=("pending", "success", "failed"))
    listing.add_argument("--method", choices=("upi", "card"))
    listing.add_argument("--order-id", help="payments of this order")
    listing.add_argument(
        "--from",
        dest="from_",
        type=when,
        metavar="WHEN",
        help="created at or after (ISO-8601 date or date-time, or unix seconds)",
    )
    listing.add_argument(
        "--to", type=when, metavar="WHEN", help="created before (ISO-8601 or unix seconds)"
    )
    listing.add_argument(
        "--search",
        help="a payment, order or refund id (or part of one), a VPA part (with @) or a "
        "card's last 4 (docs/api.md)",
    )
    paise = bounded_int(0, MAX_AMOUNT, " (paise)")
    listing.add_argument("--amount-min", type=paise, metavar="PAISE", help="amount at least")
    listing.add_argument("--amount-max", type=paise, metavar="PAISE", help="amount at most")
    listing.add_argument(
        "--limit", type=bounded_int(1, 100), default=10, help="page size, 1-100 (10)"
    )
    listing.add_argument(
        "--offset",
        type=bounded_int(0, MAX_OFFSET),
        default=0,
        help="payments to skip (0)",
    )
    listing.add_argument("--all", action="store_true", help="every matching payment (pages)")
    show = actions.add_parser(
        "get",
        help="one payment in full",
        parents=[common],
        formatter_class=_formatter,
        description=f"One payment in full.\n\n{CREDENTIALS_HELP}",
        epilog="example: paygate payments get pay_NXhj3kL9pQ2rT5vW --json\n\n" + EXIT_CODES,
    )
    show.add_argument("payment_id", metavar="PAYMENT_ID")
    payments.set_defaults(func=run(cmd_payments))

    refunds = command(
        "refunds",
        "refund a payment",
        "Refund a successful payment, all of it or part.",
        "example:\n  paygate refunds create pay_NXhj3kL9pQ2rT5vW --amount 10000 --reason damaged",
    )
    refund_actions = refunds.add_subparsers(dest="action", required=True)
    create = refund_actions.add_parser(
        "create",
        help="refund AMOUNT paise of a payment",
        parents=[common],
        formatter_class=_formatter,
        description=f"Refund --amount paise of PAYMENT_ID (an Idempotency-Key is sent, so a "
        f"retried request refunds once).\n\n{CREDENTIALS_HELP}",
        epilog="example: paygate refunds create pay_NXhj3kL9pQ2rT5vW --amount 10000\n\n"
        + EXIT_CODES,
    )
    create.add_argument("payment_id", metavar="PAYMENT_ID")
    create.add_argument("--amount", type=positive_int, required=True, help="paise")
    create.add_argument("--reason")
    refunds.set_defaults(func=run(cmd_refunds))
