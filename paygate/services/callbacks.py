"""Processor callbacks (``POST /api/v1/processors/{name}/callbacks``): a PSP's notification
turned into an outcome, applied with the worker's own guarded transitions.

The flow: the processor locates the record without trust (``callback_target``), the record and
its merchant's settings are loaded, then the processor verifies the notification with them
(``read_callback``). A verified final outcome settles a pending payment (``payments.settle``) or
finishes a pending refund (``refunds.finish``): a final outcome never flips, so duplicates,
reordered and late callbacks change nothing. A verified pending answer with a ``next_action``
updates only the payment's next action. Every callback is recorded (``processor_callbacks``,
never its body): refused ones too, and a verified event id once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..db import callbacks as repo
from ..db import payments as payments_repo
from ..db import refunds as refunds_repo
from ..db.rows import payment_from_row, refund_from_row
from ..errors import (
    CALLBACK_NOT_VERIFIED,
    PROCESSOR_NOT_FOUND,
    PROCESSOR_TAKES_NO_CALLBACKS,
    BadRequest,
    NotFound,
    UnknownProcessor,
)
from ..types import (
    CallbackRequest,
    CallbackTarget,
    Outcome,
    Payment,
    ProcessorAnswer,
    Refund,
    RefundResult,
)
from . import Context, ids, limits, payments, processors, refunds

log = logging.getLogger(__name__)

# Why a callback was refused (``processor_callbacks.error_code`` of an unverified row).
UNREADABLE = "CALLBACK_UNREADABLE"  # callback_target raised or found nothing
UNKNOWN_TARGET = "CALLBACK_UNKNOWN_TARGET"  # no such payment/refund of this processor
NOT_VERIFIED = "CALLBACK_NOT_VERIFIED"  # read_callback answered None or raised
MAX_TEXT = 255


@dataclass(frozen=True)
class ProcessorCallback:
    """One recorded callback, as the payment's timeline shows it."""

    id: str
    processor: str
    verified: bool
    applied: bool
    received_at: datetime
    payment_id: str | None = None
    refund_id: str | None = None
    event_id: str | None = None
    outcome: str | None = None
    error_code: str | None = None
    reference: str | None = None


def _short(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_TEXT]


def receive(
    ctx: Context,
    processor_name: str,
    body: bytes,
    headers: Mapping[str, str],
    client: str | None = None,
) -> dict[str, Any]:
    """Handle one notification for processor ``processor_name``: ``{"received": true,
    "applied": bool}`` for a verified one (``applied``: it changed the record). NotFound for an
    unknown processor or one without callback operations; BadRequest (recorded, nothing else
    changed) for one that cannot be located or verified. ``client`` (the caller's address, from
    the API) counts refusals against ``PAYGATE_LIMIT_CALLBACK_REFUSALS``: past it RateLimited
    (429) and nothing is recorded; in-process callers (the test processor's challenge page)
    pass None."""
    try:
        raw = ctx.plugins.processor(processor_name)
    except UnknownProcessor:
        raise NotFound(PROCESSOR_NOT_FOUND.format(name=processor_name)) from None
    if not (
        callable(getattr(raw, "callback_target", None))
        and callable(getattr(raw, "read_callback", None))
    ):
        raise NotFound(PROCESSOR_TAKES_NO_CALLBACKS.format(name=processor_name))
    request = CallbackRequest(body=body, headers={k.lower(): v for k, v in headers.items()})
    entry: dict[str, Any] = {
        "id": ids.new_id("cb_"),
        "processor": processor_name,
        "payment_id": None,
        "refund_id": None,
        "merchant_id": None,
        "event_id": None,
        "verified": False,
        "outcome": None,
        "error_code": None,
        "reference": None,
    }

    def refuse(code: str) -> BadRequest:
        if client is not None:
            limits.callback_refusal(ctx, client)  # raises past the limit: nothing recorded
        with ctx.db.connection() as conn:
            repo.record(conn, {**entry, "error_code": code})
        log.warning("callback to processor %s refused (%s)", processor_name, code)
        return BadRequest(CALLBACK_NOT_VERIFIED)

    try:
        target = raw.callback_target(request)
    except Exception as exc:
        log.warning("callback_target of %s raised %s", processor_name, type(exc).__name__)
        target = None
    if not isinstance(target, CallbackTarget) or not (target.payment_id or target.refund_id):
        raise refuse(UNREADABLE)
    entry["event_id"] = _short(target.event_id)

    payment, refund = _load(ctx, target)
    if payment is None or payment.processor != processor_name:
        raise refuse(UNKNOWN_TARGET)
    entry.update(
        payment_id=payment.id,
        refund_id=refund.id if refund is not None else None,
        merchant_id=payment.merchant_id,
    )

    bound = processors.for_payment(ctx, payment)
    try:
        result = bound.read_callback(request)
    except Exception as exc:
        log.warning("read_callback of %s raised %s", processor_name, type(exc).__name__)
        result = None
    if not isinstance(result, ProcessorAnswer) or not isinstance(result.outcome, Outcome):
        raise refuse(NOT_VERIFIED)

    entry.update(
        verified=True,
        outcome=str(result.outcome),
        error_code=_short(result.error_code) if result.outcome == Outcome.FAILED else None,
        reference=_short(result.reference),
    )
    with ctx.db.connection() as conn:
        if not repo.record(conn, entry):  # this event was recorded already: nothing to do
            return {"received": True, "applied": False}
    applied = _apply(ctx, payment, refund, result)
    if applied:
        with ctx.db.connection() as conn:
            repo.mark_applied(conn, entry["id"])
    return {"received": True, "applied": applied}


def _load(ctx: Context, target: CallbackTarget) -> tuple[Payment | None, Refund | None]:
    with ctx.db.connection() as conn:
        refund = None
        payment_id = target.payment_id
        if target.refund_id:
            row = refunds_repo.get(conn, str(target.refund_id)[:MAX_TEXT])
            if row is None:
                return None, None
            refund = refund_from_row(row)
            if payment_id and payment_id != refund.payment_id:
                return None, None
            payment_id = refund.payment_id
        row = payments_repo.get(conn, str(payment_id)[:MAX_TEXT])
    return (payment_from_row(row) if row is not None else None), refund


def _apply(ctx: Context, payment: Payment, refund: Refund | None, result: ProcessorAnswer) -> bool:
    """Apply a verified answer through the worker's guarded transitions; whether it changed
    the record."""
    if refund is not None:
        if result.outcome == Outcome.PENDING:
            return False
        answer = RefundResult(
            result.outcome, result.error_code, result.error_description, result.reference
        )
        return refunds.finish(ctx, refund, answer, payment.processor) != "skipped"
    if result.outcome == Outcome.PENDING:
        if result.next_action is None:
            return False
        with ctx.db.connection() as conn:
            return payments_repo.set_next_action(
                conn, payment.id, result.next_action.url, result.reference
            )
    return payments.settle(ctx, payment, result) != "skipped"


def for_payment(ctx: Context, payment_id: str) -> list[ProcessorCallback]:
    """The callbacks about a payment and its refunds, oldest first (the payment's timeline)."""
    with ctx.db.connection() as conn:
        rows = repo.for_payment(conn, payment_id)
    return [
        ProcessorCallback(
            id=row["id"],
            processor=row["processor"],
            verified=row["verified"],
            applied=row["applied"],
            received_at=row["received_at"],
            payment_id=row["payment_id"],
            refund_id=row["refund_id"],
            event_id=row["event_id"],
            outcome=row["outcome"],
            error_code=row["error_code"],
            reference=row["reference"],
        )
        for row in rows
    ]
