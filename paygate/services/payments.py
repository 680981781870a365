"""Payments: create (answers ``pending`` at once), read, list, capture, and settle (worker side).

Creation writes the payment and its ``payment.created``/``payment.pending`` outbox rows in one
statement and dispatches the processing job after commit. Settlement asks the payment's
processor plugin and records the outcome and its event in one guarded statement, so a job run
twice settles once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import declines, events, metrics
from ..db import merchants as merchants_repo
from ..db import orders as orders_repo
from ..db import payment_operations as operations_repo
from ..db import payments as repo
from ..db.outbox import event_params
from ..db.payment_operations import CAPTURE, RELEASE
from ..db.rows import payment_from_row
from ..errors import (
    CAPTURE_AMOUNT_TOO_LARGE,
    CAPTURE_BELOW_REFUNDED,
    CAPTURE_FAILED,
    CAPTURE_IN_PROGRESS,
    DUPLICATE_PAYMENT_REFUND_REASON,
    ORDER_ALREADY_PAID,
    PAYMENT_ALREADY_CAPTURED,
    PAYMENT_FAILED_DESCRIPTION,
    PAYMENT_NOT_CAPTURABLE,
    PAYMENT_NOT_RELEASABLE,
    PAYMENT_RELEASED,
    RELEASE_FAILED_DESCRIPTION,
    RELEASE_NOT_SUPPORTED,
    TOKENIZE_REFUSED,
    BadRequest,
    ProcessorDeclined,
    ProcessorUnreachable,
    UnknownProcessor,
)
from ..types import (
    ChargeRequest,
    ChargeResult,
    Listing,
    Merchant,
    MethodDetails,
    Order,
    OrderStatus,
    Outcome,
    Payment,
    PaymentStatus,
    TokenizeRequest,
)
from . import (
    Context,
    ids,
    limits,
    processing,
    processors,
    refunds,
    routing,
    validation,
    views,
)
from .idempotency import Token, token_params
from .lookup import found, lookup

log = logging.getLogger(__name__)


def event(name: str, payment: Payment, now: float | None = None) -> dict[str, Any]:
    return events.envelope(name, {"payment": views.payment_view(payment)}, now)


def return_url(ctx: Context, payment_id: str) -> str:
    """Where a buyer sent to a ``next_action`` comes back: the checkout app's return route."""
    return f"{ctx.settings.checkout_url.rstrip('/')}/checkout/return/{payment_id}"


def count_public_attempt(ctx: Context, order_id: str, client: str) -> str | None:
    """Count a public (checkout) payment attempt against the abuse limits (RateLimited when one
    is exceeded); the order's merchant id, None for an unknown order."""
    with ctx.db.connection() as conn:
        order = orders_repo.get(conn, order_id)
    merchant_id = order.merchant_id if order is not None else None
    limits.public_payment_attempt(ctx, order_id, merchant_id, client)
    return merchant_id


def create(
    ctx: Context,
    merchant: Merchant | None,
    body: Any,
    token: Token | None = None,
) -> Payment:
    """Create a pending payment. ``merchant`` None means the public (checkout) endpoint: the
    merchant is the order's. Check order (CONTRACT.md section 2): the order exists and is the
    merchant's (404), the method is valid and a processor of the payment's route takes it
    (400), and the order's currency and amount (400), then the method's fields.

    The route (``routing.plan``): a router plugin's, else the merchant's processor and then
    its fallback list; candidates that cannot take the payment are skipped, and when none is
    left the first one's refusal is the answer (as with a single processor). Each candidate in
    turn: its required settings (missing: skipped), then, for a processor with ``tokenize``,
    the full method details (a refusal is a 400 with its code as ``reason``; no usable answer
    within ``PAYGATE_TOKENIZE_TIMEOUT_SECONDS``: the next candidate, a 503 when none is left).
    Only the token is stored, with the routing record. Nothing is written unless a candidate
    took the payment. A checkout payment is returned without its routing record (the buyer's
    answer names no processor)."""
    order_id = validation.order_id_of(body)
    with ctx.db.connection() as conn:
        order = found(orders_repo.get(conn, order_id, merchant.id if merchant else None), "Order")
        if merchant is None:
            # A buyer must not pay twice by accident (a second tab, a reload after success);
            # the merchant's own server may still create further payments on an order.
            if order.status == OrderStatus.PAID:
                raise BadRequest(ORDER_ALREADY_PAID, field="order_id")
            merchant = found(merchants_repo.by_id(conn, order.merchant_id), "Merchant")
            checkout = True
        else:
            checkout = False
        chosen = validation.method(body.get("method"))
        # The fields are checked after the route (a method no processor takes is refused
        # first), but parsed before it: a router may route by card network.
        try:
            details, method_details = validation.payment_request(body)
        except BadRequest as exc:
            details, method_details, invalid = None, None, exc
        else:
            invalid = None
        network = details["card_network"] if details is not None else None
        plan = routing.plan(ctx, merchant, order, chosen, checkout, network)
        if invalid is not None:
            raise invalid
        # A buyer may not start a second attempt while the first is still pending: the unique
        # index on pending checkout payments refuses it in the insert below (after the
        # request's own validation, so a typo still gets its message; concurrent requests
        # too), as a Conflict. A pending payment the merchant's server created does not count.
        now = datetime.now(UTC)
        payment_id = ids.payment_id()
        build = _Builder(ctx, plan, payment_id, merchant, order, method_details)
        remaining = list(plan.candidates)
        # In-process candidates (no tokenize, or the test processor's instant one) are tried on
        # this connection: no pool, no second checkout, as before routing.
        while remaining and not _tokenizes_remotely(remaining[0]):
            method_token = build.ready(remaining.pop(0), conn)
            if method_token is not _NOT_READY:
                payment = build.payment(now, checkout, method_token, details)
                webhook_ids = _insert(conn, payment, token)
                break
        else:
            payment = None
    if payment is None:
        # A network call: made without holding a database connection.
        for bound in remaining:
            method_token = build.ready(bound, None)
            if method_token is not _NOT_READY:
                payment = build.payment(now, checkout, method_token, details)
                break
        else:
            raise _refused(plan, payment_id)
        with ctx.db.connection() as conn:
            webhook_ids = _insert(conn, payment, token)
    ctx.dispatcher.created(payment.id, webhook_ids)
    metrics.PAYMENTS.labels(payment.processor, "created").inc()
    # The buyer's (public) answer never names the merchant's processors: the routing record
    # is the merchant's (GET, list, webhooks).
    return replace(payment, routing=None) if checkout else payment


_NOT_READY = object()


def _refused(plan: routing.Plan, payment_id: str) -> Exception:
    """What creation answers when no candidate took the payment (``plan.failure()``); when a
    candidate was unreachable, the final verdict is logged as one WARNING line (the tokenize
    lines before it gave none)."""
    failure = plan.failure()
    unreachable = [a for a in plan.record["attempts"] if a["outcome"] == routing.UNREACHABLE]
    if unreachable:
        log.warning(
            "payment %s not created: no processor of its route could take it (%d unreachable, "
            "%d skipped): answered %d",
            payment_id,
            len(unreachable),
            len(plan.record["attempts"]) - len(unreachable),
            failure.status,
        )
    return failure


def _tokenizes_remotely(bound: processors.Bound) -> bool:
    return bound.has("tokenize") and not bound.tokenizes_inline


class _Builder:
    """One creation's candidates, tried in turn (``ready``), and the payment of the one that
    took it (``payment``)."""

    def __init__(
        self,
        ctx: Context,
        plan: routing.Plan,
        payment_id: str,
        merchant: Merchant,
        order: Order,
        method_details: MethodDetails,
    ) -> None:
        self.ctx, self.plan, self.payment_id = ctx, plan, payment_id
        self.merchant, self.order, self.method_details = merchant, order, method_details
        self.bound: processors.Bound | None = None

    def ready(self, bound: processors.Bound, conn: Any) -> Any:
        """The candidate's token (None without ``tokenize``), or ``_NOT_READY`` when it was
        skipped (required settings missing) or unavailable (recorded on the plan). A
        tokenize refusal (the card or VPA refused) is raised: it is an answer, not an
        outage."""
        try:
            # Its required settings are set and open (400/500 here, not in the worker).
            bound.load_config(conn)  # read once, reused by tokenize
        except BadRequest as exc:
            self.plan.skip(bound.name, "config", exc)
            return _NOT_READY
        if not bound.has("tokenize"):
            self.bound = bound
            return None
        try:
            method_token = _token(
                self.ctx, bound, self.payment_id, self.merchant.id, self.order, self.method_details
            )
        except processors.TokenizeUnavailable as exc:
            self.plan.unreachable(bound.name, "tokenize", exc.reason, exc)
            return _NOT_READY
        self.bound = bound
        return method_token

    def payment(
        self, now: datetime, checkout: bool, method_token: str | None, details: dict[str, Any]
    ) -> Payment:
        name = self.bound.name
        # The candidates before the one used (route-stage skips of later ones are recorded
        # too, but were not passed over to get here).
        candidates = self.plan.record["candidates"]
        before = candidates[: candidates.index(name)]
        passed = [a for a in self.plan.record["attempts"] if a["processor"] in before]
        if passed:
            outage = any(a["outcome"] == routing.UNREACHABLE for a in passed)
            log.log(
                logging.WARNING if outage else logging.INFO,
                "payment %s routed to %s after %d skipped or unreachable processor(s)",
                self.payment_id,
                name,
                len({a["processor"] for a in passed}),
            )
        return Payment(
            id=self.payment_id,
            merchant_id=self.merchant.id,
            order_id=self.order.id,
            amount=self.order.amount,
            currency=self.order.currency,
            status=PaymentStatus.PENDING,
            processor=name,
            created_at=now,
            updated_at=now,
            checkout=checkout,
            method_token=method_token,
            routing=self.plan.chose(name),
            **details,
        )


check_capabilities = routing.check_capabilities


def _token(
    ctx: Context,
    processor: processors.Bound,
    payment_id: str,
    merchant_id: str,
    order: Order,
    method_details: MethodDetails,
) -> str:
    """The token the processor gives for the body's method details (ProcessorDeclined when it
    refuses them)."""
    request = TokenizeRequest(
        details=method_details,
        merchant_id=merchant_id,
        amount=order.amount,
        currency=order.currency,
        idempotency_key=payment_id,
    )
    result = processors.tokenize(ctx, processor, request)
    if result.token is None:
        raise ProcessorDeclined(
            result.error_code or ChargeResult.FAILED_CODE,
            result.error_description or TOKENIZE_REFUSED,
            field="card" if method_details.method == "card" else "vpa",
        )
    return result.token


def _insert(conn: Any, payment: Payment, token: Token | None) -> list:
    """Write the payment and its payment.created/payment.pending events (and the stored
    answer of an idempotent create); the new webhook log ids."""
    view = views.payment_view(payment)
    stamp = payment.created_at.timestamp()
    # One view serves the stored answer and both events (they carry the same payment).
    created = [
        events.envelope(events.PAYMENT_CREATED, {"payment": view}, stamp),
        events.envelope(events.PAYMENT_PENDING, {"payment": view}, stamp),
    ]
    return repo.insert(
        conn,
        {
            "id": payment.id,
            "order_id": payment.order_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "method": payment.method,
            "processor": payment.processor,
            "vpa": payment.vpa,
            "card_network": payment.card_network,
            "card_last4": payment.card_last4,
            "checkout": payment.checkout,
            "created_at": payment.created_at,
            "method_token": payment.method_token,
            "routing": payment.routing,
            **event_params(payment.merchant_id, payment.id, created),
            **token_params(token, 201, _public_answer(view) if payment.checkout else view),
        },
    )


def _public_answer(view: dict[str, Any]) -> dict[str, Any]:
    """The public create's answer: the payment without its routing record."""
    return {name: value for name, value in view.items() if name != "routing"}


def get(ctx: Context, merchant: Merchant | None, payment_id: str) -> Payment:
    """The payment (the merchant's own when ``merchant`` is given, any merchant's for the
    public read), else a 404."""

    def read(conn) -> Payment | None:
        row = repo.get(conn, payment_id, merchant.id if merchant else None)
        return payment_from_row(row) if row is not None else None

    return lookup(ctx, "Payment", payment_id, read)


def list_payments(ctx: Context, merchant: Merchant, params: dict[str, Any]) -> Listing[Payment]:
    """A page of the merchant's payments, newest first, with the filters of
    ``payment_filters``."""
    lim, off = validation.pagination(params.get("limit"), params.get("offset"))
    filters = validation.payment_filters(params)
    with ctx.db.connection() as conn:
        rows, total = repo.list_for_merchant(
            conn, merchant.id, limit=lim, offset=off, filters=filters
        )
    return Listing([payment_from_row(r) for r in rows], total, lim, off)


def capture(ctx: Context, merchant: Merchant, payment_id: str, body: Any) -> Payment:
    """Capture a successful payment once, for at most its amount (refunds then fit in what was
    captured); emits ``payment.captured``.

    Check order: the payment is the merchant's (404), the body (400), then the state. The
    intent is written (``capture_status: "pending"``) under the row lock, then the processor
    is asked with no lock held: a second capture meanwhile is refused as in progress. A
    refusal is recorded and raised (400 with the processor's ``reason``); an exception or a
    pending answer leaves the capture pending (the caller answers 202) and a job asks again
    with the same idempotency key (the payment id) until the processor knows.
    """
    get(ctx, merchant, payment_id)
    body = validation.require_object(body)  # an empty body arrives as {}
    validation.reject_unknown(body, {"amount"})
    requested = body.get("amount")
    if requested is not None:
        requested = validation.amount(requested, minimum=1)
    with ctx.db.transaction() as conn:
        payment = _locked_authorization(conn, payment_id, merchant, PAYMENT_NOT_CAPTURABLE)
        if payment.capture_status == "pending":
            raise BadRequest(CAPTURE_IN_PROGRESS)
        if requested is not None and requested > payment.amount:
            raise BadRequest(CAPTURE_AMOUNT_TOO_LARGE, field="amount")
        amount = payment.amount if requested is None else requested
        if amount < payment.amount_refunded:
            raise BadRequest(CAPTURE_BELOW_REFUNDED, field="amount")
        # An uninstalled processor is refused now (400), not left pending for a job forever.
        ctx.plugins.processor(payment.processor)
        lease = ctx.settings.job_lease_seconds
        if not operations_repo.begin(conn, payment.id, merchant.id, CAPTURE, amount, lease):
            raise BadRequest(CAPTURE_IN_PROGRESS)
    payment = replace(payment, capture_status="pending")
    return _ask_and_record(ctx, payment, CAPTURE, amount)


def _locked_authorization(
    conn: Any, payment_id: str, merchant: Merchant, not_ready: str
) -> Payment:
    """The merchant's payment, locked, while it is an authorization a capture or a release may
    act on: successful, not released, not captured (400 ``not_ready`` / released / captured)."""
    payment = payment_from_row(found(repo.lock(conn, payment_id, merchant.id), "Payment"))
    if payment.status != PaymentStatus.SUCCESS:
        raise BadRequest(not_ready)
    if payment.released_at is not None:
        raise BadRequest(PAYMENT_RELEASED)
    if payment.captured:
        raise BadRequest(PAYMENT_ALREADY_CAPTURED)
    return payment


def release(
    ctx: Context, merchant: Merchant, payment_id: str, body: Any, token: Token | None = None
) -> Payment:
    """Give back a successful, uncaptured authorization (``POST .../release``); emits
    ``payment.released``. The processor must have ``release`` (400 otherwise). Like a capture:
    refused -> 400 with the processor's ``reason``; unknown -> pending (202), a job asks again.
    ``token`` (an Idempotency-Key) stores the answer once the release is known."""
    get(ctx, merchant, payment_id)
    if body is not None:
        validation.reject_unknown(validation.require_object(body), set())
    with ctx.db.transaction() as conn:
        payment = _locked_authorization(conn, payment_id, merchant, PAYMENT_NOT_RELEASABLE)
        processor = processors.for_payment(ctx, payment)
        if not processor.has("release"):
            raise BadRequest(RELEASE_NOT_SUPPORTED.format(processor=processor.name))
        lease = ctx.settings.job_lease_seconds
        if not operations_repo.begin(conn, payment.id, merchant.id, RELEASE, payment.amount, lease):
            raise BadRequest(CAPTURE_IN_PROGRESS)
    released = _ask_and_record(ctx, payment, RELEASE, payment.amount)
    if token is not None:
        code = 200 if released.released_at is not None else 202
        with ctx.db.connection() as conn:
            operations_repo.complete_key(
                conn, merchant.id, token.params(code, views.payment_view(released))
            )
    return released


def is_pending(payment: Payment, operation: str) -> bool:
    """The answer of a capture or a release whose outcome is not known yet (the API's 202)."""
    if operation == CAPTURE:
        return payment.capture_status == "pending"
    return payment.released_at is None


def _ask(ctx: Context, payment: Payment, operation: str, amount: int) -> ChargeResult:
    """Ask the processor to capture or release, through the adapter (the merchant's settings
    as ``config=`` when the method takes them)."""
    processor = processors.for_payment(ctx, payment)
    if operation == CAPTURE:
        return processor.capture(payment, amount)
    return processor.release(payment)


def _ask_and_record(ctx: Context, payment: Payment, operation: str, amount: int) -> Payment:
    """The request's own ask: the outcome recorded, a refusal raised, an unknown one left to
    the job (the payment as it stands)."""
    try:
        result = _ask(ctx, payment, operation, amount)
    except Exception:  # never a 500, never a guess: the job asks again
        log.exception("processor error on %s of payment %s", operation, payment.id)
        result = None
    recorded = _record(ctx, payment, operation, amount, result, attempt=1)
    if result is not None and result.outcome == Outcome.FAILED:
        default = CAPTURE_FAILED if operation == CAPTURE else RELEASE_FAILED_DESCRIPTION
        code = declines.CAPTURE_FAILED if operation == CAPTURE else declines.RELEASE_FAILED
        raise ProcessorDeclined(result.error_code or code, result.error_description or default)
    return recorded


def _record(
    ctx: Context,
    payment: Payment,
    operation: str,
    amount: int,
    result: ChargeResult | None,
    attempt: int,
) -> Payment:
    """Record what the processor said (None: it raised) and return the payment as it stands."""
    if result is None or result.outcome == Outcome.PENDING:
        delay = (
            processing.backoff(attempt)
            if result is None
            else processing.wait_after(result, attempt)
        )
        with ctx.db.connection() as conn:
            operations_repo.defer(conn, payment.id, delay, result.reference if result else None)
        return payment
    success = result.outcome == Outcome.SUCCESS
    now = datetime.now(UTC)
    envelopes = []
    if success and operation == CAPTURE:
        done = replace(
            payment,
            captured=True,
            captured_at=now,
            amount_captured=amount,
            capture_status="success",
            capture_error_code=None,
            capture_error_description=None,
            updated_at=now,
        )
        envelopes = [event(events.PAYMENT_CAPTURED, done, now.timestamp())]
    elif success:
        done = replace(payment, released_at=now, updated_at=now)
        envelopes = [event(events.PAYMENT_RELEASED, done, now.timestamp())]
    else:
        done = payment
    code = description = None
    if not success:
        default = CAPTURE_FAILED if operation == CAPTURE else RELEASE_FAILED_DESCRIPTION
        code = result.error_code or (
            declines.CAPTURE_FAILED if operation == CAPTURE else declines.RELEASE_FAILED
        )
        description = result.error_description or default
    # The payment row first, as capture() and release() take it before the operation's row:
    # one lock order, so a capture racing the record of another cannot deadlock.
    with ctx.db.transaction() as conn:
        repo.lock(conn, payment.id, payment.merchant_id)
        changed, webhook_ids = operations_repo.finish(
            conn,
            operation,
            success,
            {
                "now": now,
                "reference": result.reference,
                "error_code": code,
                "error_description": description,
                **event_params(payment.merchant_id, payment.id, envelopes),
            },
        )
        if not changed or not success:  # recorded already, or the refusal: read it back
            return payment_from_row(repo.get(conn, payment.id))
    ctx.dispatcher.webhooks(webhook_ids)
    return done


def process_operation(ctx: Context, payment_id: str) -> str:
    """The job of a capture or a release whose outcome was not known: ask again (the same
    idempotency key, the payment id) and record what the processor knows. Safe to run any
    number of times."""
    lease = ctx.settings.job_lease_seconds
    with ctx.db.connection() as conn:
        op = operations_repo.claim(conn, payment_id, lease)
        if op is None:
            return "skipped"
        payment = payment_from_row(repo.get(conn, payment_id))
    operation, amount, attempt = op["operation"], op["amount"], op["processor_attempts"]

    def ask() -> ChargeResult:
        return _ask(ctx, payment, operation, amount)

    try:
        result = processing.ask_until_known(ask, ask, attempt=attempt, lease_seconds=lease)
    except ProcessorUnreachable as exc:
        log_outage(
            f"{operation} of payment",
            payment_id,
            payment.processor,
            exc.reason,
            processing.backoff(attempt),
        )
        result = None
    except Exception as exc:
        if isinstance(exc, UnknownProcessor):
            log.error("%s of payment %s waits for its processor", operation, payment_id)
        else:
            log.exception("processor error on %s of payment %s", operation, payment_id)
        result = None
    recorded = _record(ctx, payment, operation, amount, result, attempt)
    if result is None or result.outcome == Outcome.PENDING:
        return "deferred"
    if operation == CAPTURE:
        return "captured" if recorded.captured else "failed"
    return "released" if recorded.released_at is not None else "failed"


# -- worker side ------------------------------------------------------------------------------


def process(ctx: Context, payment_id: str) -> str:
    """Settle one payment through its processor. Safe to run any number of times."""
    lease = ctx.settings.job_lease_seconds
    with ctx.db.connection() as conn:
        row = repo.claim(conn, payment_id, lease)
    if row is None:
        return "skipped"
    return _process_claimed(ctx, row, lease)


# A batch claims its payments with this much lease beyond ``PAYGATE_JOB_LEASE_SECONDS`` and
# starts a payment only within it, so each still has a whole lease ahead of it.
BATCH_WINDOW_SECONDS = 2.0
# A batch's final outcomes are written together (one statement, one enqueue of their webhooks):
# an outcome waits at most this long, or until the payment after it is done when that one took
# longer (a slow processor: each is then written as soon as it is known).
SETTLE_WAIT_SECONDS = 0.05


def process_batch(
    ctx: Context,
    payment_ids: list[str],
    bound: Callable[[str], AbstractContextManager] = nullcontext,
    window: float = BATCH_WINDOW_SECONDS,
) -> list[str]:
    """``process`` for the payments one worker thread took from a backlog together: one
    statement claims them all, then each is asked in turn (``bound(payment_id)`` around each:
    the worker's log context) and their final outcomes are written together
    (``_Settlements``). Safe to run any number of times. The outcome of each id, in the order
    given.

    The claim's lease is ``PAYGATE_JOB_LEASE_SECONDS`` plus ``window`` seconds, and a
    payment is started only within that window, so each has a whole lease ahead of it, as a
    payment processed alone does; what the window leaves (slow processors) is given back
    unattempted, due at once and enqueued again (``deferred``). A payment that fails with an
    unexpected error keeps its lease (the janitor dispatches it again when it runs out, as
    for a task that died) and the batch goes on. An outcome known but not yet written when the
    worker dies is asked again when its lease runs out (the processor answers the same charge:
    its idempotency key is the payment's id)."""
    ids = list(dict.fromkeys(str(payment_id) for payment_id in payment_ids))
    lease = ctx.settings.job_lease_seconds
    with ctx.db.connection() as conn:
        rows = repo.claim_many(conn, ids, lease + window)
    started = time.monotonic()
    outcomes = {payment_id: "skipped" for payment_id in ids if payment_id not in rows}
    settlements = _Settlements(ctx, SETTLE_WAIT_SECONDS, bound)
    try:
        for position, payment_id in enumerate(ids):
            row = rows.get(payment_id)
            if row is None:
                continue
            began = time.monotonic()
            if began - started > window:
                rest = [i for i in ids[position:] if i in rows]
                with ctx.db.connection() as conn:
                    back = repo.give_back(conn, rest, row["locked_until"])
                for again in back:
                    ctx.dispatcher.payment(again)
                outcomes.update(dict.fromkeys(rest, "deferred"))
                break
            with bound(payment_id):
                try:
                    outcomes[payment_id] = _process_claimed(ctx, row, lease, settlements)
                except Exception:
                    outcomes[payment_id] = _settling_failed(payment_id)
            if settlements.due() or time.monotonic() - began >= settlements.max_wait:
                settlements.flush()
    finally:
        settlements.flush()
        outcomes.update(settlements.done)
    return [outcomes[str(payment_id)] for payment_id in payment_ids]


def _settling_failed(payment_id: str) -> str:
    """A claimed payment of a batch failed unexpectedly (logged with its traceback): it keeps
    its lease and is processed again when the janitor dispatches it; its outcome is ``error``."""
    log.exception("payment %s: settling failed; retried when its lease ends", payment_id)
    return "error"


def _process_claimed(
    ctx: Context, row: dict[str, Any], lease: float, settlements: _Settlements | None = None
) -> str | None:
    """Settle a payment this worker has just claimed (``row``): its outcome, or None when its
    final outcome waits in ``settlements`` (written with its batch)."""
    payment_id = str(row["id"])
    payment = payment_from_row(row)
    acknowledged = row["charge_acknowledged"]
    attempt = row["processor_attempts"]
    try:
        processor = processors.for_payment(ctx, payment)

        def charge() -> ChargeResult:
            nonlocal acknowledged
            answer = processor.charge(
                ChargeRequest(
                    payment=payment,
                    idempotency_key=payment.id,
                    attempt=attempt,
                    token=payment.method_token,
                    return_url=return_url(ctx, payment.id),
                )
            )
            acknowledged = True  # the processor has seen it: from now on only sync
            return answer

        def sync() -> ChargeResult:
            return processor.sync(payment)

        result = processing.ask_until_known(
            sync if acknowledged else charge, sync, attempt=attempt, lease_seconds=lease
        )
    except ProcessorUnreachable as exc:
        # An expected outage: nothing reached the PSP. Before the charge was acknowledged the
        # payment may move to the next processor of its route; else this one is asked again.
        return _unreachable(ctx, payment, exc, attempt, acknowledged)
    except Exception as exc:
        # Never guess an outcome: look again later, the idempotency key keeps it one charge.
        if isinstance(exc, UnknownProcessor):  # uninstalled or disabled since: wait for it
            log.error("payment %s waits for its processor: %s", payment_id, exc.description)
        else:
            log.exception("processor error for payment %s (attempt %d)", payment_id, attempt)
        with ctx.db.connection() as conn:
            repo.defer(conn, payment_id, processing.backoff(attempt), None, acknowledged)
        return "deferred"
    if result.outcome == Outcome.PENDING:
        action = result.next_action
        with ctx.db.connection() as conn:
            repo.defer(
                conn,
                payment_id,
                processing.wait_after(result, attempt),
                result.reference,
                True,
                action.url if action is not None else None,
            )
        return "deferred"
    if settlements is not None:
        return settlements.add(payment, result)
    return settle(ctx, payment, result)


def outage_delay(exc: ProcessorUnreachable, attempt: int) -> float:
    """When to ask an unreachable processor again: its ``retry_after``, else the backoff."""
    if exc.retry_after is not None and exc.retry_after > 0:
        return max(float(exc.retry_after), processing.MIN_WAIT_SECONDS)
    return processing.backoff(attempt)


def log_outage(what: str, record_id: str, processor: str, reason: str, delay: float) -> None:
    """The one WARNING line of an expected processor outage: which record, which processor,
    why, and when it is asked again (no traceback: nothing is wrong with the gateway)."""
    at = datetime.now(UTC) + timedelta(seconds=delay)
    log.warning(
        "%s %s: processor %s unreachable (%s); next attempt at %s (in %.0f s)",
        what,
        record_id,
        processor,
        reason,
        views.iso(at),
        delay,
    )


def _unreachable(
    ctx: Context,
    payment: Payment,
    exc: ProcessorUnreachable,
    attempt: int,
    acknowledged: bool,
) -> str:
    """The payment's processor raised ProcessorUnreachable. A charge not acknowledged moves to
    the next candidate of the payment's route that can charge it (``routing.fallback_for``: a
    processor with ``tokenize`` only with the stored method details, a UPI payment's VPA,
    tokenized here; never a card's). The switch and the new token are one guarded UPDATE: a
    job run twice moves it once, so no two processors charge it. With none left, or for a
    ``sync``, the same processor is asked again on the backoff (and the fallbacks considered
    again then). Recorded in ``routing`` either way; logged as one WARNING line."""
    stage = "sync" if acknowledged else "charge"
    record = routing.add_attempt(
        routing.record_of(payment), payment.processor, stage, routing.UNREACHABLE, exc.reason
    )
    if not acknowledged:
        fallback = routing.fallback_for(ctx, payment, record)
        record, target = fallback.record, fallback.processor
        if target is not None:
            record["processor"] = target
            with ctx.db.connection() as conn:
                moved = repo.switch_processor(
                    conn, payment.id, payment.processor, target, record, fallback.token
                )
            if moved:
                log.warning(
                    "payment %s: processor %s unreachable (%s); moved to %s, next attempt now",
                    payment.id,
                    payment.processor,
                    exc.reason,
                    target,
                )
                ctx.dispatcher.payment(payment.id)
                return "rerouted"
            return "skipped"  # moved or settled by another run meanwhile
    delay = outage_delay(exc, attempt)
    with ctx.db.connection() as conn:
        repo.record_routing(conn, payment.id, record)
        repo.defer(conn, payment.id, delay, None, acknowledged)
    log_outage("payment", payment.id, payment.processor, exc.reason, delay)
    return "deferred"


def buyer_returned(ctx: Context, payment_id: str) -> Payment:
    """The buyer came back from a ``next_action`` (the checkout app's return route): a pending
    payment is asked about at once (due now, its job dispatched). Safe to call any number of
    times; a settled payment is left as it is. NotFound for an unknown id."""
    with ctx.db.connection() as conn:
        row = found(repo.make_due(conn, payment_id), "Payment")
    if row["made_due"]:
        ctx.dispatcher.payment(payment_id)
    return payment_from_row(row)


def _settlement(payment: Payment, result: ChargeResult) -> tuple[Payment, dict[str, Any]]:
    """A final ``result`` of a pending ``payment``: the payment as settled, and the settle
    statement's parameters (its one event, ``payment.success`` or ``payment.failed``)."""
    success = result.outcome == Outcome.SUCCESS
    now = datetime.now(UTC)
    settled = replace(
        payment,
        status=PaymentStatus.SUCCESS if success else PaymentStatus.FAILED,
        error_code=None if success else (result.error_code or "PAYMENT_FAILED"),
        error_description=None
        if success
        else (result.error_description or PAYMENT_FAILED_DESCRIPTION),
        updated_at=now,
        processor_reference=result.reference or payment.processor_reference,
        next_action=None,
    )
    name = events.PAYMENT_SUCCESS if success else events.PAYMENT_FAILED
    params = {
        "status": str(settled.status),
        "error_code": settled.error_code,
        "error_description": settled.error_description,
        "reference": result.reference,
        "updated_at": now,
        **event_params(payment.merchant_id, payment.id, [event(name, settled)]),
    }
    return settled, params


def settle(ctx: Context, payment: Payment, result: ChargeResult) -> str:
    """Record a final outcome of a pending payment with its event, in one guarded statement:
    the worker's sync and a verified processor callback both come here. ``skipped`` when the
    payment was no longer pending (a final outcome never flips)."""
    settled, params = _settlement(payment, result)
    success = settled.status == PaymentStatus.SUCCESS
    refund = None
    refund_webhook_ids: list = []
    # Only a buyer's (checkout) success can find its order already paid and need the automatic
    # refund written with it; every other settle stays the one autocommitted statement it was
    # (no transaction left open, and no extra round trips, on the worker's hot path).
    atomic = success and payment.checkout
    with ctx.db.transaction() if atomic else ctx.db.connection() as conn:
        outcome = repo.settle(conn, params)
        if outcome.changed and success and outcome.duplicate:
            # A buyer's payment succeeded on an order another payment had already paid (two
            # tabs, two concurrent attempts): refund it in full, in the same transaction, so a
            # crash cannot leave the buyer charged twice. The refund then takes the normal
            # path (its job asks the processor; refund.created / refund.processed).
            refund, refund_webhook_ids = refunds.create_automatic(
                ctx, conn, settled, DUPLICATE_PAYMENT_REFUND_REASON
            )
    if not outcome.changed:
        return "skipped"
    metrics.PAYMENTS.labels(payment.processor, str(settled.status)).inc()
    ctx.dispatcher.webhooks(outcome.webhook_ids)
    if refund is not None:
        log.warning(
            "payment %s succeeded on already paid order %s: refunded automatically as %s",
            payment.id,
            payment.order_id,
            refund.id,
        )
        ctx.dispatcher.refund(refund.id)
        ctx.dispatcher.webhooks(refund_webhook_ids)
        metrics.REFUNDS.labels(payment.processor, "created").inc()
    return str(settled.status)


class _Settlements:
    """A batch's final outcomes waiting to be written together (``repo.settle_many``: one
    statement, one enqueue of their webhooks), each at most ``max_wait`` seconds after it was
    known; ``done`` holds each written payment's outcome by id. A buyer's (checkout) success
    is settled on its own, after those waiting (the order of the writes stays the order of
    the answers): it may need its automatic refund in the same transaction."""

    def __init__(
        self, ctx: Context, max_wait: float, bound: Callable[[str], AbstractContextManager]
    ):
        self.ctx, self.max_wait, self.bound = ctx, max_wait, bound
        self.waiting: list[tuple[Payment, ChargeResult, Payment, dict[str, Any]]] = []
        self.first_at = 0.0
        self.done: dict[str, str] = {}

    def add(self, payment: Payment, result: ChargeResult) -> str | None:
        """Settle ``payment`` with ``result``: its outcome when written now, None when it
        waits for the others."""
        if payment.checkout and result.outcome == Outcome.SUCCESS:
            self.flush()
            return settle(self.ctx, payment, result)
        if not self.waiting:
            self.first_at = time.monotonic()
        self.waiting.append((payment, result, *_settlement(payment, result)))
        return None

    def due(self) -> bool:
        return bool(self.waiting) and time.monotonic() - self.first_at >= self.max_wait

    def flush(self) -> None:
        """Write every waiting outcome (``skipped`` for a payment no longer pending). Should
        the one statement fail, each is settled on its own."""
        waiting, self.waiting = self.waiting, []
        if not waiting:
            return
        try:
            with self.ctx.db.connection() as conn:
                changed, webhook_ids = repo.settle_many(conn, [w[3] for w in waiting])
        except Exception:
            log.exception("settling %d payments together failed; settling each alone", len(waiting))
            for payment, result, *_ in waiting:
                self.done[payment.id] = self._alone(payment, result)
            return
        for payment, _result, settled, _params in waiting:
            if payment.id in changed:
                metrics.PAYMENTS.labels(payment.processor, str(settled.status)).inc()
                self.done[payment.id] = str(settled.status)
            else:
                self.done[payment.id] = "skipped"
        self.ctx.dispatcher.webhooks(webhook_ids)

    def _alone(self, payment: Payment, result: ChargeResult) -> str:
        """``settle``, for a payment whose batch statement failed: ``error`` when this fails
        too (the payment keeps its lease and is settled when the janitor dispatches it
        again)."""
        with self.bound(payment.id):
            try:
                return settle(self.ctx, payment, result)
            except Exception:
                return _settling_failed(payment.id)
