"""What the merchant dashboard shows: the home page's stats and chart for a period, the CSV
export's rows, a payment's timeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ..db import dashboard as repo
from ..db import payments as payments_repo
from ..db import stats as stats_repo
from ..db import webhooks as webhooks_repo
from ..db.rows import payment_from_row
from ..types import (
    DeliveryStatus,
    Merchant,
    Money,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    WebhookLog,
)
from . import Context, payments, validation
from . import refunds as refunds_service

CHART_DAYS = 14
CHART_MAX_DAYS = 92  # a chosen period's chart shows at most its last 92 days
EXPORT_BATCH = 500
HOME_CURRENCY = "INR"


@dataclass(frozen=True)
class Day:
    day: date
    success: int = 0
    failed: int = 0
    pending: int = 0
    volume: int = 0  # successful payments in HOME_CURRENCY, paise

    @property
    def total(self) -> int:
        return self.success + self.failed + self.pending


@dataclass(frozen=True)
class Overview:
    total_transactions: int
    successful: int
    failed: int
    pending: int
    total_amount: Money  # sum of successful payments in HOME_CURRENCY
    refunded: Money
    other_volumes: list[Money]  # successful volume in any other currency
    days: list[Day] = field(default_factory=list)
    chart_clipped: bool = False  # the period is longer than the chart: its last days shown

    @property
    def success_rate(self) -> float:
        """Successful payments as a percentage of all payments (0 when there are none)."""
        if not self.total_transactions:
            return 0.0
        return 100.0 * self.successful / self.total_transactions


@dataclass(frozen=True)
class Period:
    """A range of whole UTC days for the home page: ``first`` (None: since the first payment)
    to ``last``, both included."""

    first: date | None
    last: date

    @property
    def since(self) -> datetime | None:
        return datetime.combine(self.first, time.min, tzinfo=UTC) if self.first else None

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)


def overview(
    ctx: Context, merchant: Merchant, today: date | None = None, period: Period | None = None
) -> Overview:
    """The three contract stats from real data, plus payments per day. Without ``period``:
    the stats over every payment and the chart for the last 14 days. With one: both for the
    payments created in it (the chart's last ``CHART_MAX_DAYS`` days of it at most)."""
    merchant_id = merchant.id
    today = today or datetime.now(UTC).date()
    with ctx.db.connection() as conn:
        if period is None:
            totals = stats_repo.totals(conn, merchant_id)
            last, first, clipped = today, today - timedelta(days=CHART_DAYS - 1), False
        else:
            totals = stats_repo.totals(conn, merchant_id, period.since, period.until)
            last = period.last
            first = period.first or min(
                (row["first_at"].astimezone(UTC).date() for row in totals), default=last
            )
            first = min(first, last)
            clipped = (last - first).days >= CHART_MAX_DAYS
            if clipped:
                first = last - timedelta(days=CHART_MAX_DAYS - 1)
        since = datetime.combine(first, time.min, tzinfo=UTC)
        until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        daily = stats_repo.daily(conn, merchant_id, since, HOME_CURRENCY, until)
    home = next((row for row in totals if row["currency"] == HOME_CURRENCY), None)
    buckets: dict[date, dict[str, int]] = {
        first + timedelta(days=n): {"success": 0, "failed": 0, "pending": 0, "volume": 0}
        for n in range((last - first).days + 1)
    }
    for row in daily:
        bucket = buckets.get(row["day"])
        if bucket is None:  # a payment dated in the future (clock skew): not on the chart
            continue
        bucket[row["status"]] += row["payments"]
        if row["status"] == PaymentStatus.SUCCESS:
            bucket["volume"] += row["volume"]
    return Overview(
        total_transactions=sum(row["total"] for row in totals),
        successful=sum(row["successful"] for row in totals),
        failed=sum(row["failed"] for row in totals),
        pending=sum(row["pending"] for row in totals),
        total_amount=Money(int(home["volume"]) if home else 0, HOME_CURRENCY),
        refunded=Money(int(home["refunded"]) if home else 0, HOME_CURRENCY),
        other_volumes=[
            Money(int(row["volume"]), row["currency"])
            for row in totals
            if row["currency"] != HOME_CURRENCY and row["volume"]
        ],
        days=[Day(day=day, **values) for day, values in sorted(buckets.items())],
        chart_clipped=clipped,
    )


def export_payments(ctx: Context, merchant: Merchant, params: dict[str, Any]) -> Iterator[Payment]:
    """Every payment of the merchant under the filters of ``GET /api/v1/payments`` (the same
    ``params``, read by the same ``validation.payment_filters``), newest first, read in keyset
    pages of ``EXPORT_BATCH`` with a connection taken per page: any number of rows in bounded
    memory, and no connection held while a slow client reads. Bad filters raise here, before
    the first row."""
    filters = validation.payment_filters(params)

    def rows() -> Iterator[Payment]:
        after = None
        while True:
            with ctx.db.connection() as conn:
                page = payments_repo.keyset_page(
                    conn, merchant.id, limit=EXPORT_BATCH, after=after, filters=filters
                )
            yield from (payment_from_row(row) for row in page)
            if len(page) < EXPORT_BATCH:
                return
            after = (page[-1]["created_at"], page[-1]["id"])

    return rows()


@dataclass(frozen=True)
class Moment:
    """One line of a payment's timeline."""

    at: datetime
    kind: str  # created, success, failed, captured, refund, refund_processed, refund_failed
    title: str
    detail: str = ""
    where: str = ""  # a webhook delivery's endpoint (see delivery_target)


@dataclass(frozen=True)
class PaymentDetail:
    payment: Payment
    refunds: list[Refund]  # newest first
    deliveries: list[WebhookLog]  # of the payment's and its refunds' events, each with attempts
    timeline: list[Moment]
    refundable: int  # paise still refundable (amount minus pending and processed refunds)
    capturable: bool


def payment_detail(ctx: Context, merchant: Merchant, payment_id: str) -> PaymentDetail:
    """A payment with its refunds, the deliveries of their events with every attempt, and the
    timeline of it all. NotFound for another merchant's payment."""
    payment = payments.get(ctx, merchant, payment_id)
    refunds = refunds_service.list_for_payment(ctx, merchant, payment_id)
    with ctx.db.connection() as conn:
        moments = repo.payment_moments(conn, payment.id, merchant.id) or {}
        resources = [payment.id, *(refund.id for refund in refunds)]
        deliveries = webhooks_repo.for_resources(conn, merchant.id, resources)
    timeline = (
        _timeline(payment, moments, refunds)
        + _routing_moments(payment)
        + _delivery_moments(deliveries)
    )
    timeline.sort(key=lambda line: line.at)
    return PaymentDetail(
        payment=payment,
        refunds=refunds,
        deliveries=deliveries,
        timeline=timeline,
        refundable=payment.refundable_amount if _authorized(payment) else 0,
        capturable=_authorized(payment) and not payment.captured,
    )


def _authorized(payment: Payment) -> bool:
    """A success whose authorization still stands (not released, no capture being settled)."""
    return (
        payment.status == PaymentStatus.SUCCESS
        and payment.released_at is None
        and payment.capture_status != "pending"
    )


def _timeline(payment: Payment, moments: dict[str, Any], refunds: list[Refund]) -> list[Moment]:
    money = payment.money
    lines = [
        Moment(payment.created_at, "created", "Payment created", f"{money} via {payment.method}")
    ]
    settled = moments.get("settled_at")
    if payment.status == PaymentStatus.SUCCESS:
        lines.append(Moment(settled or payment.updated_at, "success", "Payment succeeded"))
    elif payment.status == PaymentStatus.FAILED:
        reason = payment.error_description or "Payment processing failed"
        lines.append(Moment(settled or payment.updated_at, "failed", "Payment failed", reason))
    if payment.captured:
        lines.append(Moment(payment.captured_at or payment.updated_at, "captured", "Captured"))
    for refund in refunds:
        amount = Money(refund.amount, payment.currency)
        reason = f" ({refund.reason})" if refund.reason else ""
        created = refund.created_at
        lines.append(Moment(created, "refund", f"Refund of {amount} created", refund.id + reason))
        if refund.status == RefundStatus.PROCESSED:
            at = refund.processed_at or created
            lines.append(Moment(at, "refund_processed", f"Refund of {amount} processed"))
        elif refund.status == RefundStatus.FAILED:
            detail = refund.error_description or "The processor refused the refund"
            lines.append(Moment(created, "refund_failed", f"Refund of {amount} failed", detail))
    return [line for line in lines if line.at is not None]


def _routing_moments(payment: Payment) -> list[Moment]:
    """The routing decision (who chose the processor, why, and the candidates) just after the
    creation, and one line per fallback: a processor skipped or unreachable, and why."""
    record = payment.routing
    if record is None or payment.created_at is None:
        return []
    decided = record.get("decided_by") or "merchant"
    who = "the merchant's settings" if decided == "merchant" else decided.replace(":", " ", 1)
    candidates = " → ".join(record.get("candidates") or [])
    reason = record.get("reason") or ""
    detail = f"{reason}; candidates: {candidates}" if reason else f"candidates: {candidates}"
    lines = [
        Moment(
            payment.created_at,
            "routed",
            f"Routed to {record.get('processor') or payment.processor} by {who}",
            detail,
        )
    ]
    for attempt in record.get("attempts") or []:
        # Recorded to the second: never before the creation it belongs to.
        at = max(
            _parse_iso(attempt.get("last_at") or attempt.get("at")) or payment.created_at,
            payment.created_at,
        )
        times = attempt.get("times")
        repeated = f" ({times} times)" if times else ""
        if attempt.get("outcome") == "unreachable":
            title = f"Processor {attempt.get('processor')} unreachable at {attempt.get('stage')}"
        else:
            title = f"Processor {attempt.get('processor')} skipped at {attempt.get('stage')}"
        lines.append(Moment(at, "fallback", title + repeated, attempt.get("reason") or ""))
    return lines


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def delivery_target(log: WebhookLog) -> str:
    """Where a delivery goes, for people: its endpoint's URL, or the primary webhook URL
    (``primary``, with the merchant's current URL when there is one)."""
    if log.endpoint_id is not None:
        return log.url or "a deleted endpoint"
    return f"primary ({log.url})" if log.url else "primary (no URL set)"


def _delivery_moments(deliveries: list[WebhookLog]) -> list[Moment]:
    """One line per webhook delivery: where it went and where it stands after its attempts
    (a failure with its reason)."""
    lines = []
    for log in deliveries:
        attempts = log.attempts
        counted = f"{attempts} attempt{'' if attempts == 1 else 's'}"
        code = log.response_code
        last = f", last answer HTTP {code}" if code else (", no answer" if attempts else "")
        if log.status == DeliveryStatus.SUCCESS:
            title, detail = f"Webhook {log.event} delivered", f"{counted}{last}"
        elif log.status == DeliveryStatus.FAILED:
            title = f"Webhook {log.event} failed"
            why = f": {log.failure_reason}" if log.failure_reason else last
            detail = f"{counted}{why}; retry it by hand"
        else:
            title = f"Webhook {log.event} pending"
            detail = f"{counted}{last}" if attempts else "First attempt on its way"
        at = log.last_attempt_at or log.created_at
        where = f"To {delivery_target(log)}"
        lines.append(Moment(at, f"webhook_{log.status}", title, detail, where))
    return lines
