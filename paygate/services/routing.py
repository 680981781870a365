"""Routing and fallback (issue 17): which processors may take a payment, in which order, and the
record of every decision and fallback that the API shows as ``routing``.

The default route is the merchant's processor, then its fallback list
(``merchants.fallback_processors``). A router plugin (``paygate_route_payment``) may answer a
``Route`` instead; a router that raises or answers something that is not a ``Route`` naming at
least one processor is logged and the default route is used (a payment is never refused because
of a router). Candidates that are not registered, do not take the method, the currency or the
amount are skipped and recorded; when none is left, the first candidate's own refusal is raised
(so the single-processor case answers exactly as before routing existed).

The record (``Payment.routing``, a JSON object)::

    {"processor": "b", "decided_by": "merchant" | "router:<plugin>", "reason": "...",
     "candidates": ["a", "b"],
     "attempts": [{"processor": "a", "stage": "route" | "config" | "tokenize" | "charge",
                   "outcome": "skipped" | "unreachable", "reason": "...", "at": iso,
                   "times": n, "last_at": iso}]}

``attempts`` lists every candidate that was skipped (it cannot take this payment: ``route`` for
not registered, method, currency or amount, checked for every candidate at creation, also the
ones after the processor used, since they explain why a later fallback cannot go there;
``config`` for missing settings; ``charge``/``tokenize`` in the worker's fallback) or was
unreachable (``tokenize``, ``charge``, ``sync``), in the order they were considered.
``times``/``last_at`` appear when the same attempt repeated (a processor retried on its backoff
while it stays down), so the record stays small however long an outage lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import (
    PAYMENT_METHOD_NOT_SUPPORTED,
    PROCESSOR_AMOUNT_TOO_LARGE,
    PROCESSOR_AMOUNT_TOO_SMALL,
    PROCESSOR_CURRENCY_NOT_SUPPORTED,
    BadRequest,
    PaygateError,
    UnknownProcessor,
)
from ..types import (
    ChargeResult,
    Merchant,
    MethodDetails,
    Order,
    Payment,
    Route,
    RouteRequest,
    TokenizeRequest,
)
from . import Context, processors, views

log = logging.getLogger(__name__)

MERCHANT = "merchant"
DEFAULT_REASON = "the merchant's processor"
DEFAULT_REASON_WITH_FALLBACK = "the merchant's processor, then its fallback list"
ROUTER_FAILED = "the router failed ({error}): the merchant's route is used"
ROUTER_INVALID = "router {plugin} answered no usable Route: the merchant's route is used"
NOT_REGISTERED = "not registered"
NEEDS_DETAILS_AGAIN = "needs the {method} details again (not stored)"
NEEDS_CARD_AGAIN = NEEDS_DETAILS_AGAIN.format(method="card")
TOKENIZE_REFUSED_STORED = "refused the stored {method} details ({code})"

SKIPPED = "skipped"
UNREACHABLE = "unreachable"


def now_iso() -> str:
    return views.iso(datetime.now(UTC)) or ""


def default_route(merchant: Merchant) -> tuple[str, ...]:
    """The merchant's processor, then its fallback list (each name once)."""
    return _unique((merchant.processor, *merchant.fallback_processors))


def _unique(names: Any) -> tuple[str, ...]:
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return tuple(seen)


def add_attempt(
    record: dict[str, Any], processor: str, stage: str, outcome: str, reason: str
) -> dict[str, Any]:
    """Append one attempt to ``record`` (in place, and returned); an attempt identical to one
    already there (same processor, stage, outcome and reason) counts ``times`` instead."""
    attempts = record.setdefault("attempts", [])
    at = now_iso()
    for attempt in attempts:
        if (attempt["processor"], attempt["stage"], attempt["outcome"], attempt["reason"]) == (
            processor,
            stage,
            outcome,
            reason,
        ):
            attempt["times"] = attempt.get("times", 1) + 1
            attempt["last_at"] = at
            return record
    attempts.append(
        {"processor": processor, "stage": stage, "outcome": outcome, "reason": reason, "at": at}
    )
    return record


def record_of(payment: Payment) -> dict[str, Any]:
    """A mutable copy of the payment's routing record (one for a payment made before routing
    was recorded: its processor alone, decided by the merchant)."""
    if payment.routing is None:
        return {
            "processor": payment.processor,
            "decided_by": MERCHANT,
            "reason": DEFAULT_REASON,
            "candidates": [payment.processor],
            "attempts": [],
        }
    record = dict(payment.routing)
    record["candidates"] = list(record.get("candidates") or [payment.processor])
    record["attempts"] = [dict(a) for a in record.get("attempts") or []]
    return record


@dataclass
class Plan:
    """The candidates that may take a payment, in order, and its routing record so far."""

    candidates: list[processors.Bound]
    record: dict[str, Any]
    errors: list[PaygateError] = field(default_factory=list)

    def skip(self, name: str, stage: str, error: PaygateError) -> None:
        self.errors.append(error)
        add_attempt(self.record, name, stage, SKIPPED, error.description)

    def unreachable(self, name: str, stage: str, reason: str, error: PaygateError) -> None:
        self.errors.append(error)
        add_attempt(self.record, name, stage, UNREACHABLE, reason)

    def failure(self) -> PaygateError:
        """What to answer when no candidate could take the payment: the first refusal (the
        first candidate's, as before routing), or the first outage when every candidate that
        passed the checks was unreachable (503)."""
        outages = [e for e in self.errors if isinstance(e, processors.TokenizeUnavailable)]
        passed = [n for n in self.record["candidates"] if not self._skipped(n)]
        if outages and passed:
            return outages[0]
        return self.errors[0]

    def _skipped(self, name: str) -> bool:
        return any(
            a["processor"] == name and a["outcome"] == SKIPPED for a in self.record["attempts"]
        )

    def chose(self, name: str) -> dict[str, Any]:
        self.record["processor"] = name
        return self.record


def route_request(
    merchant: Merchant,
    order: Order,
    method: str,
    checkout: bool,
    card_network: str | None,
) -> RouteRequest:
    return RouteRequest(
        merchant_id=merchant.id,
        order_id=order.id,
        method=method,
        amount=order.amount,
        currency=order.currency,
        default=default_route(merchant),
        checkout=checkout,
        card_network=card_network,
        receipt=order.receipt,
        notes=dict(order.notes or {}),
    )


def decide(ctx: Context, request: RouteRequest) -> dict[str, Any]:
    """Ask the routers (``ctx.plugins.route``): the routing record's head (decided_by, reason,
    candidates). A router's failure is logged and the default route taken."""
    default = request.default
    fallback_reason = DEFAULT_REASON_WITH_FALLBACK if len(default) > 1 else DEFAULT_REASON
    head = {"decided_by": MERCHANT, "reason": fallback_reason, "candidates": list(default)}
    try:
        plugin, route = ctx.plugins.route(request)
    except Exception as exc:
        # The router is a plugin: its bug must not refuse payments. Its traceback helps its
        # author; the payment goes the merchant's way.
        log.exception("router failed for a payment on order %s", request.order_id)
        head["reason"] = ROUTER_FAILED.format(error=type(exc).__name__)
        return head
    if plugin is None:
        return head
    names = route.processors if isinstance(route, Route) else None
    if isinstance(names, (tuple, list)) and names and all(isinstance(n, str) and n for n in names):
        return {
            "decided_by": f"router:{plugin}",
            "reason": route.reason if isinstance(route.reason, str) else "",
            "candidates": list(_unique(names)),
        }
    log.error(
        "router %s answered %r for order %s: not a usable Route", plugin, route, request.order_id
    )
    head["reason"] = ROUTER_INVALID.format(plugin=plugin)
    return head


def plan(
    ctx: Context,
    merchant: Merchant,
    order: Order,
    method: str,
    checkout: bool = False,
    card_network: str | None = None,
) -> Plan:
    """The route of a new payment: the routers' (or the merchant's) candidates bound to the
    merchant, with the ones that cannot take this method, currency or amount skipped and
    recorded. Raises the first candidate's refusal when none is left."""
    head = decide(ctx, route_request(merchant, order, method, checkout, card_network))
    result = Plan([], {"processor": None, **head, "attempts": []})
    for name in head["candidates"]:
        try:
            bound = processors.for_merchant(ctx, merchant.id, name)
        except UnknownProcessor as exc:
            result.skip(name, "route", exc)
            continue
        if method not in bound.methods:
            refusal = BadRequest(PAYMENT_METHOD_NOT_SUPPORTED.format(method=method), field="method")
            result.skip(name, "route", refusal)
            continue
        try:
            check_capabilities(bound, order.amount, order.currency)
        except BadRequest as exc:
            result.skip(name, "route", exc)
            continue
        result.candidates.append(bound)
    if not result.candidates:
        raise result.failure()
    return result


def check_capabilities(processor: processors.Bound, amount: int, currency: str) -> None:
    """The processor's declared currencies and amount limits (400 with a clear message)."""
    currencies = processor.currencies
    if currencies is not None and currency.upper() not in currencies:
        raise BadRequest(
            PROCESSOR_CURRENCY_NOT_SUPPORTED.format(currency=currency, processor=processor.name)
        )
    minimum, maximum = processor.min_amount, processor.max_amount
    if minimum is not None and amount < minimum:
        raise BadRequest(
            PROCESSOR_AMOUNT_TOO_SMALL.format(
                amount=amount, minimum=minimum, processor=processor.name
            )
        )
    if maximum is not None and amount > maximum:
        raise BadRequest(
            PROCESSOR_AMOUNT_TOO_LARGE.format(
                amount=amount, maximum=maximum, processor=processor.name
            )
        )


def stored_details(payment: Payment) -> MethodDetails | None:
    """The payment's method details as stored, for a fallback processor's ``tokenize`` in the
    worker: a UPI payment's VPA (``payments.vpa``). None for a card: its number and CVV are
    never stored."""
    if payment.method == "upi" and payment.vpa:
        return MethodDetails(method="upi", vpa=payment.vpa)
    return None


@dataclass(frozen=True)
class Fallback:
    """Where a payment whose charge was unreachable may go: ``processor`` (None when no
    candidate is left), the token that processor gave for the stored method details (None
    when it has no ``tokenize``), and the routing record with every candidate considered."""

    processor: str | None
    token: str | None
    record: dict[str, Any]


def fallback_for(ctx: Context, payment: Payment, record: Mapping[str, Any]) -> Fallback:
    """In the worker, after ``payment.processor`` was unreachable for a charge: the next
    candidate of the payment's route that can charge it, in route order. A candidate skipped
    at the ``route`` stage at creation cannot take this payment (method, currency, amount, not
    registered) and is passed over (its attempt already says why). Each other one is checked
    (registered, method, currency and amount, required settings: else ``skipped`` at
    ``charge``); one with ``tokenize`` needs the method details again: a card's are never
    stored (``skipped``: "needs the card details again (not stored)"), a UPI payment's VPA is,
    so it is tokenized here with it (bounded by ``PAYGATE_TOKENIZE_TIMEOUT_SECONDS``; inline
    for the test processor). A tokenize that is unavailable is recorded ``unreachable`` at
    ``tokenize``, a refusal ``skipped`` at ``tokenize`` (the payment cannot go there); either
    way the next candidate is considered. Tokenize never moves money, so a job run twice may
    tokenize twice but the caller's guarded UPDATE moves the payment once."""
    record = dict(record)
    record["attempts"] = [dict(a) for a in record.get("attempts") or []]
    candidates = list(record.get("candidates") or [payment.processor])
    try:
        after = candidates[candidates.index(payment.processor) + 1 :]
    except ValueError:
        after = []
    cannot = {
        a["processor"]
        for a in record["attempts"]
        if a["stage"] == "route" and a["outcome"] == SKIPPED
    }
    for name in after:
        if name in cannot:
            continue
        try:
            bound = processors.for_merchant(ctx, payment.merchant_id, name)
        except UnknownProcessor:
            add_attempt(record, name, "charge", SKIPPED, NOT_REGISTERED)
            continue
        if payment.method not in bound.methods:
            reason = PAYMENT_METHOD_NOT_SUPPORTED.format(method=payment.method)
            add_attempt(record, name, "charge", SKIPPED, reason)
            continue
        try:
            check_capabilities(bound, payment.amount, payment.currency)
            bound.load_config()
        except BadRequest as exc:
            add_attempt(record, name, "charge", SKIPPED, exc.description)
            continue
        if not bound.has("tokenize"):
            return Fallback(name, None, record)
        details = stored_details(payment)
        if details is None:
            reason = NEEDS_DETAILS_AGAIN.format(method=payment.method)
            add_attempt(record, name, "charge", SKIPPED, reason)
            continue
        request = TokenizeRequest(
            details=details,
            merchant_id=payment.merchant_id,
            amount=payment.amount,
            currency=payment.currency,
            idempotency_key=payment.id,
        )
        try:
            result = processors.tokenize(ctx, bound, request)
        except processors.TokenizeUnavailable as exc:
            add_attempt(record, name, "tokenize", UNREACHABLE, exc.reason)
            continue
        if result.token is None:
            code = result.error_code or ChargeResult.FAILED_CODE
            reason = TOKENIZE_REFUSED_STORED.format(method=payment.method, code=code)
            add_attempt(record, name, "tokenize", SKIPPED, reason)
            continue
        return Fallback(name, result.token, record)
    return Fallback(None, None, record)
