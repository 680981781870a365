"""``/dashboard/transactions.csv``: the payments the transactions page's filters select, as a
CSV file streamed while it is read (any number of rows in bounded memory)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from paygate.services import dashboard, views
from paygate.types import Payment

from . import filters
from .base import Page
from .render import rupees

HEADER = (
    "payment_id",
    "order_id",
    "amount_paise",
    "amount",
    "currency",
    "method",
    "status",
    "vpa",
    "card_network",
    "card_last4",
    "captured",
    "amount_refunded_paise",
    "error_code",
    "created_at",
    "updated_at",
)
FLUSH_ROWS = 500
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A value as a CSV cell: "" for nothing, a leading ' where a spreadsheet would see a
    formula."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def row(payment: Payment) -> list[str]:
    return [
        cell(value)
        for value in (
            payment.id,
            payment.order_id,
            payment.amount,
            rupees(payment.amount),
            payment.currency,
            payment.method,
            payment.status,
            payment.vpa,
            payment.card_network,
            payment.card_last4,
            "true" if payment.captured else "false",
            payment.amount_refunded,
            payment.error_code,
            views.iso(payment.created_at),
            views.iso(payment.updated_at),
        )
    ]


def csv_chunks(payments: Iterable[Payment]) -> Iterator[bytes]:
    """The header, then the rows, as UTF-8 bytes in chunks of ``FLUSH_ROWS`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    count = 0
    for payment in payments:
        writer.writerow(row(payment))
        count += 1
        if count % FLUSH_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


class TransactionsCsv(Page):
    """GET only and read-only (no CSRF token needed); a session like every page. Bad filters
    answer the error page (400) before any row is read."""

    def on_get(self, req, resp):
        params = filters.api_params(filters.read(req))
        payments = dashboard.export_payments(self.ctx, self.merchant(req), params)
        today = datetime.now(UTC).date().isoformat()
        resp.content_type = "text/csv; charset=utf-8"
        resp.set_header("Content-Disposition", f'attachment; filename="payments-{today}.csv"')
        resp.stream = csv_chunks(payments)
