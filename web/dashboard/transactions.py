"""``/dashboard/transactions``: the payments table, a payment's detail, capture and refund."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from paygate.errors import (
    CAPTURE_PENDING_NOTICE,
    FORM_AMOUNT_INVALID,
    REFUND_FORM_USED,
    Conflict,
    IdempotencyMismatch,
    NotFound,
    PaygateError,
)
from paygate.services import callbacks, dashboard, idempotency, payments, refunds, views
from paygate.services.callbacks import ProcessorCallback
from paygate.services.dashboard import Moment
from paygate.types import Listing, Money

from ..formatting import money
from . import filters
from .base import Page
from .render import parse_rupees

PAGE_SIZE = 25
STATUSES = ("success", "pending", "failed")
METHODS = ("upi", "card")


def page_number(raw: str | None) -> int:
    try:
        number = int(raw or 1)
    except ValueError:
        return 1
    return min(max(number, 1), 100_000)


def pager(page: int, total: int, size: int) -> dict[str, Any]:
    last = max((total + size - 1) // size, 1)
    return {
        "page": page,
        "last": last,
        "first_row": (page - 1) * size + 1 if total else 0,
        "last_row": min(page * size, total),
        "total": total,
        "previous": page - 1 if page > 1 else None,
        "next": page + 1 if page < last else None,
    }


class Transactions(Page):
    """The payments table under the filter form (GET fields, so a filtered view is a link).
    With ``fragment=rows``: only the rows and the count, for the page's auto-refresh."""

    def on_get(self, req, resp):
        form = filters.read(req)
        query = filters.chosen(form)
        page = page_number(req.get_param("page"))
        error = None
        try:
            params = filters.api_params(form)
            listing = payments.list_payments(
                self.ctx,
                self.merchant(req),
                {**params, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE},
            )
        except PaygateError as exc:
            error = exc.description
            listing = Listing([], 0, PAGE_SIZE, 0)
        last = pager(page, listing.total, PAGE_SIZE)["last"]
        fragment = req.get_param("fragment") == "rows"
        if page > last and not fragment:  # past the end (the list shrank, a hand-made URL)
            self.redirect(
                req, resp, "/dashboard/transactions?" + urlencode({**query, "page": last})
            )
            return
        self.render(
            req,
            resp,
            "transaction_rows.html" if fragment else "transactions.html",
            status=400 if error else 200,
            active="transactions",
            error=error,
            rows=listing.items,
            pending=sum(1 for p in listing.items if p.status == "pending"),
            pager=pager(page, listing.total, PAGE_SIZE),
            filters=form,
            filtered=bool(query),
            query=query,
            export_url="/dashboard/transactions.csv" + ("?" + urlencode(query) if query else ""),
            refresh_url="/dashboard/transactions?"
            + urlencode({**query, "page": page, "fragment": "rows"}),
            statuses=STATUSES,
            methods=METHODS,
        )


def callback_moment(callback: ProcessorCallback) -> Moment:
    """A processor callback as a line of the payment's timeline."""
    about = f"refund {callback.refund_id}" if callback.refund_id else "payment"
    if callback.verified:
        effect = "applied" if callback.applied else "no change"
        title = f"Processor callback ({about}): {callback.outcome}, {effect}"
    else:
        title = f"Processor callback ({about}) refused"
    detail = " · ".join(
        part
        for part in (
            callback.processor,
            f"event {callback.event_id}" if callback.event_id else "",
            callback.error_code or "",
            f"reference {callback.reference}" if callback.reference else "",
        )
        if part
    )
    return Moment(callback.received_at, "callback", title, detail)


class Transaction(Page):
    """One payment: details, timeline, refunds, deliveries; capture and refund forms."""

    missing = ("Payment", "transactions")

    def show(self, req, resp, payment_id: str, *, status: int = 200, **errors: Any) -> None:
        merchant = self.merchant(req)
        detail = dashboard.payment_detail(self.ctx, merchant, payment_id)
        received = callbacks.for_payment(self.ctx, detail.payment.id)
        timeline = sorted(
            [*detail.timeline, *(callback_moment(c) for c in received)], key=lambda m: m.at
        )
        values = {"capture_error": None, "refund_error": None, "refund_form": None}
        values.update(errors)
        self.render(
            req,
            resp,
            "payment.html",
            status=status,
            active="transactions",
            detail=detail,
            timeline=timeline,
            p=detail.payment,
            webhook_url_set=bool(merchant.webhook_url),
            refund_key="dash_" + secrets.token_urlsafe(18),
            **values,
        )

    def on_get(self, req, resp, payment_id):
        self.show(req, resp, payment_id)


class Capture(Transaction):
    def on_post(self, req, resp, payment_id):
        form = self.form(req)
        body: dict[str, Any] = {}
        if form.get("amount", "").strip():
            amount = parse_rupees(form["amount"])
            if amount is None:
                self.show(req, resp, payment_id, status=400, capture_error=FORM_AMOUNT_INVALID)
                return
            body["amount"] = amount
        try:
            captured = payments.capture(self.ctx, self.merchant(req), payment_id, body)
        except NotFound:
            raise  # the page's 404
        except PaygateError as exc:
            self.show(req, resp, payment_id, status=400, capture_error=exc.description)
            return
        if captured.capture_status == "pending":
            notice = CAPTURE_PENDING_NOTICE
        else:
            notice = (
                f"Payment captured ({Money(captured.amount_captured or 0, captured.currency)})."
            )
        self.redirect(req, resp, f"/dashboard/transactions/{payment_id}", notice)


class Refund(Transaction):
    """A refund from the detail page. The form carries its own Idempotency-Key, so a double
    submit (or a resubmitted page) creates one refund, not two."""

    def on_post(self, req, resp, payment_id):
        merchant = self.merchant(req)
        form = self.form(req)
        amount = parse_rupees(form.get("amount"))
        reason = form.get("reason", "").strip() or None
        if amount is None:
            self.show(
                req,
                resp,
                payment_id,
                status=400,
                refund_error=FORM_AMOUNT_INVALID,
                refund_form=form,
            )
            return
        body = {"amount": amount, "reason": reason}
        key = form.get("idempotency_key", "")[:100] or "dash_" + secrets.token_urlsafe(18)
        location = f"/dashboard/transactions/{payment_id}"
        try:
            answer = idempotency.run(
                self.ctx,
                merchant.id,
                idempotency.REFUND_CREATE,
                key,
                body,
                lambda token: views.refund_view(
                    refunds.create(self.ctx, merchant, payment_id, body, token)
                ),
                target=payment_id,
            )
        except NotFound:
            raise  # the page's 404
        except (IdempotencyMismatch, Conflict):
            self.redirect(req, resp, location, REFUND_FORM_USED, "error")
            return
        except PaygateError as exc:
            self.show(
                req, resp, payment_id, status=400, refund_error=exc.description, refund_form=form
            )
            return
        if answer.replayed:
            self.redirect(req, resp, location, "This refund was already submitted.", "info")
            return
        refund = answer.view
        self.redirect(
            req,
            resp,
            location,
            f"Refund {refund['id']} of {money(refund['amount'])} created; it is processed "
            "in a few seconds.",
        )
