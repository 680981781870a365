"""Refunds: create (answers ``pending`` at once), read, list, and process (worker side).

Creation locks the payment row, checks the core invariants (the payment is ``success``; the
amount fits in what is still available), then asks the refund-policy plugins, then reserves the
amount and writes the refund with its ``refund.created`` outbox row in one guarded statement.
Concurrent refunds on one payment therefore serialize, and the database refuses an over-refund
even if this code were wrong. Processing asks the payment's processor plugin with the refund id
as the idempotency key; a failure frees the amount again.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .. import events, metrics
from ..db import payments as payments_repo
from ..db import refunds as repo
from ..db.outbox import event_params
from ..db.rows import payment_from_row, refund_from_row
from ..errors import (
    PARTIAL_REFUND_NOT_SUPPORTED,
    PAYMENT_NOT_REFUNDABLE,
    PAYMENT_RELEASED,
    REFUND_BEFORE_CAPTURE,
    REFUND_EXCEEDS_AVAILABLE,
    REFUND_FAILED_DESCRIPTION,
    REFUND_WHILE_CAPTURE_PENDING,
    BadRequest,
    RefundNotAllowed,
    ServiceUnavailable,
    ValidationFailed,
)
from ..plugins import RefundPolicyFailed
from ..types import (
    Merchant,
    Outcome,
    Payment,
    PaymentStatus,
    Refund,
    RefundDenied,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from . import Context, ids, processing, processors, validation, views
from .idempotency import Token, token_params
from .lookup import found, lookup

log = logging.getLogger(__name__)


def event(name: str, refund: Refund, now: float | None = None) -> dict[str, Any]:
    return events.envelope(name, {"refund": views.refund_view(refund)}, now)


def refund_request(payment_id: str, body: Any) -> RefundRequest:
    """Validate ``{amount, reason?}``: amount an integer number of paise, at least 1."""
    body = validation.require_object(body)
    validation.reject_unknown(body, {"amount", "reason"})
    return RefundRequest(
        payment_id=payment_id,
        amount=validation.amount(body.get("amount"), minimum=1),
        reason=validation.optional_string(body, "reason", validation.MAX_REASON),
    )


def _payment(conn, merchant: Merchant, payment_id: str, *, lock: bool = False) -> Payment:
    """The merchant's payment (locked for the transaction when ``lock``), else a 404."""
    row = None
    if validation.plausible_id(payment_id):
        read = payments_repo.lock if lock else payments_repo.get
        row = read(conn, payment_id, merchant.id)
    return payment_from_row(found(row, "Payment"))


def check_invariants(ctx: Context, payment: Payment, amount: int) -> None:
    """The core's rules, checked before any policy and not overridable by one."""
    if payment.status != PaymentStatus.SUCCESS:
        raise BadRequest(PAYMENT_NOT_REFUNDABLE)
    if payment.released_at is not None:
        raise BadRequest(PAYMENT_RELEASED)
    if payment.capture_status == "pending":
        raise BadRequest(REFUND_WHILE_CAPTURE_PENDING)
    # An uninstalled processor is refused now rather than left for the worker to retry forever.
    processor = ctx.plugins.processor(payment.processor)
    # With manual capture a successful payment is an authorization: no money moved yet, so
    # nothing can go back until a capture took it (a release gives the hold back instead).
    if processor.supports_manual_capture and not payment.captured:
        raise BadRequest(REFUND_BEFORE_CAPTURE)
    # Within the captured amount when a capture took part of the payment (refundable_amount).
    if amount > payment.refundable_amount:
        raise BadRequest(REFUND_EXCEEDS_AVAILABLE, field="amount")
    whole = payment.amount if payment.amount_captured is None else payment.amount_captured
    if not processor.supports_partial_refund and amount != whole:
        raise BadRequest(
            PARTIAL_REFUND_NOT_SUPPORTED.format(processor=processor.name), field="amount"
        )


def create(
    ctx: Context,
    merchant: Merchant,
    payment_id: str,
    body: Any,
    token: Token | None = None,
) -> Refund:
    """Create a pending refund of a payment of ``merchant``.

    Order of checks: the payment exists and is the merchant's (404), the body (400), the
    payment's state, the amount available, then the refund-policy plugins (all 400; a policy
    that raises: 503 ``SERVICE_UNAVAILABLE`` naming it). A refused request writes nothing.
    """
    try:
        request = refund_request(payment_id, body)
    except ValidationFailed:
        with ctx.db.connection() as conn:
            _payment(conn, merchant, payment_id)  # a 404 wins over a bad body
        raise
    try:
        with ctx.db.transaction() as conn:
            payment = _payment(conn, merchant, payment_id, lock=True)
            check_invariants(ctx, payment, request.amount)
            denied = ctx.plugins.refund_policy(payment, request, payment.amount_refunded)
            if isinstance(denied, RefundDenied):
                raise RefundNotAllowed(denied.reason)
            inserted = _insert_pending(conn, payment, request.amount, request.reason, token)
            if inserted is None:  # the guard refused although the checks passed: roll back
                raise BadRequest(REFUND_EXCEEDS_AVAILABLE, field="amount")
            refund, webhook_ids = inserted
    except RefundPolicyFailed as exc:
        # Raised out of the transaction (rolled back), so the database is not taken for down.
        raise ServiceUnavailable(str(exc)) from exc
    ctx.dispatcher.refund(refund.id)
    ctx.dispatcher.webhooks(webhook_ids)
    metrics.REFUNDS.labels(payment.processor, "created").inc()
    return refund


def create_automatic(ctx: Context, conn, payment: Payment, reason: str) -> tuple[Refund, list]:
    """A full refund the gateway itself starts (a duplicate payment for a paid order), inside
    the caller's transaction: the same guarded insert and ``refund.created`` event as a
    merchant's refund, without the refund-policy plugins (a policy may not keep a buyer charged
    twice). The caller dispatches the refund job and the webhooks after commit."""
    inserted = _insert_pending(conn, payment, payment.refundable_amount, reason)
    if inserted is None:  # cannot happen: the payment turned success in this very transaction
        raise RuntimeError(f"automatic refund of {payment.id} was refused by the guard")
    return inserted


def _insert_pending(
    conn, payment: Payment, amount: int, reason: str | None, token: Token | None = None
) -> tuple[Refund, list] | None:
    """A pending refund of ``payment`` and its ``refund.created`` event, in one guarded
    statement (with the Idempotency-Key's stored answer when ``token``): the refund and its
    webhook ids, or None when the guard found the amount no longer available."""
    now = datetime.now(UTC)
    refund = Refund(
        id=ids.refund_id(),
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        amount=amount,
        reason=reason,
        status=RefundStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    view = views.refund_view(refund)  # one view for the event and the stored answer
    created, webhook_ids = repo.insert(
        conn,
        {
            "payment_id": payment.id,
            "amount": amount,
            "reason": reason,
            "created_at": now,
            **event_params(
                payment.merchant_id,
                refund.id,
                [events.envelope(events.REFUND_CREATED, {"refund": view}, now.timestamp())],
            ),
            **token_params(token, 201, view),
        },
    )
    return (refund, webhook_ids) if created else None


def get(ctx: Context, merchant: Merchant, refund_id: str) -> Refund:
    """One refund of ``merchant`` (another merchant's is "Refund not found" too)."""

    def read(conn) -> Refund | None:
        row = repo.get(conn, refund_id, merchant.id)
        return refund_from_row(row) if row is not None else None

    return lookup(ctx, "Refund", refund_id, read)


def list_for_payment(ctx: Context, merchant: Merchant, payment_id: str) -> list[Refund]:
    """The refunds of one of ``merchant``'s payments, newest first (404 for a foreign one)."""
    with ctx.db.connection() as conn:
        _payment(conn, merchant, payment_id)
        rows = repo.list_for_payment(conn, payment_id, merchant.id)
    return [refund_from_row(r) for r in rows]


# -- worker side ------------------------------------------------------------------------------


def process(ctx: Context, refund_id: str) -> str:
    """Send one pending refund to its payment's processor and record the outcome.

    Safe to run any number of times: the claim is guarded, the processor sees the refund id as
    its idempotency key, and the final transition only happens from ``pending``.
    """
    lease = ctx.settings.job_lease_seconds
    with ctx.db.connection() as conn:
        row = repo.claim(conn, refund_id, lease)
        if row is None:
            return "skipped"
        payment = payment_from_row(payments_repo.get(conn, row["payment_id"]))
    refund = refund_from_row(row)
    attempt = row["processor_attempts"]
    try:
        processor = processors.for_payment(ctx, payment)

        def ask() -> RefundResult:
            return processor.refund(payment, refund)

        result = processing.ask_until_known(ask, ask, attempt=attempt, lease_seconds=lease)
    except Exception:
        # Never guess: ask again later; the refund id keeps it one refund at the processor.
        log.exception("processor error for refund %s (attempt %d)", refund_id, attempt)
        with ctx.db.connection() as conn:
            repo.defer(conn, refund_id, processing.backoff(attempt), None)
        return "deferred"
    if result.outcome == Outcome.PENDING:
        with ctx.db.connection() as conn:
            repo.defer(conn, refund_id, processing.wait_after(result, attempt), result.reference)
        return "deferred"
    return finish(ctx, refund, result, processor.name)


def finish(ctx: Context, refund: Refund, result: RefundResult, processor: str) -> str:
    """Record a final outcome of a pending refund with its event (guarded: ``skipped`` when it
    was no longer pending). The worker and a verified processor callback both come here;
    ``processor`` (the payment's) labels the outcome in ``paygate_refunds_total``."""
    now = datetime.now(UTC)
    if result.outcome == Outcome.SUCCESS:
        done = replace(
            refund,
            status=RefundStatus.PROCESSED,
            processed_at=now,
            updated_at=now,
            processor_reference=result.reference or refund.processor_reference,
        )
        name, write = events.REFUND_PROCESSED, repo.mark_processed
        params: dict[str, Any] = {"processed_at": now}
    else:
        done = replace(
            refund,
            status=RefundStatus.FAILED,
            error_code=result.error_code or "REFUND_FAILED",
            error_description=result.error_description or REFUND_FAILED_DESCRIPTION,
            updated_at=now,
            processor_reference=result.reference or refund.processor_reference,
        )
        name, write = events.REFUND_FAILED, repo.mark_failed
        params = {
            "error_code": done.error_code,
            "error_description": done.error_description,
            "updated_at": now,
        }
    with ctx.db.connection() as conn:
        changed, webhook_ids = write(
            conn,
            {
                **params,
                "reference": result.reference,
                **event_params(refund.merchant_id, refund.id, [event(name, done, now.timestamp())]),
            },
        )
    if not changed:
        return "skipped"
    metrics.REFUNDS.labels(processor, str(done.status)).inc()
    ctx.dispatcher.webhooks(webhook_ids)
    return str(done.status)
