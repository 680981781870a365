"""The hosted checkout page (``/checkout``) and its notices (unknown, paid, wrong key)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import falcon
import jinja2

from paygate.api.errors import handle_http_error
from paygate.errors import (
    CHECKOUT_KEY_MISMATCH,
    FIELD_REQUIRED,
    NOT_FOUND,
    ORDER_ALREADY_PAID,
    URL_NOT_FOUND,
    NotFound,
    PaygateError,
    ServiceUnavailable,
    UnknownProcessor,
)
from paygate.services import Context, merchants, orders, payments
from paygate.types import Order, OrderStatus

from ..formatting import money

log = logging.getLogger("paygate.checkout")

MAX_ORDER_ID = 64


class Notice(Exception):
    """A page that replaces the checkout: why the buyer cannot pay, and the error the SDK
    receives in ``onFailure`` when the page is embedded."""

    def __init__(self, status: int, title: str, message: str, code: str, description: str):
        super().__init__(description)
        self.status = status
        self.title = title
        self.message = message
        self.code = code
        self.description = description


def missing_order() -> Notice:
    return Notice(
        400,
        "No order to pay",
        "This checkout link is incomplete: it does not name an order. "
        "Please return to the store and start the payment again.",
        "BAD_REQUEST_ERROR",
        FIELD_REQUIRED.format(field="order_id"),
    )


def unknown_order() -> Notice:
    return Notice(
        404,
        "Order not found",
        "We could not find this order. The link may be mistyped or the order may have been "
        "removed. Please return to the store and try again.",
        "NOT_FOUND_ERROR",
        NOT_FOUND.format(kind="Order"),
    )


def order_paid() -> Notice:
    return Notice(
        409,
        "This order is already paid",
        "A payment for this order has already been completed, so there is nothing more to pay. "
        "You will find the confirmation with the store.",
        "BAD_REQUEST_ERROR",
        ORDER_ALREADY_PAID,
    )


def wrong_key() -> Notice:
    return Notice(
        403,
        "This payment link is not valid",
        "The key in this link does not belong to the store that created the order. "
        "Please return to the store and start the payment again.",
        "AUTHENTICATION_ERROR",
        CHECKOUT_KEY_MISMATCH,
    )


def unavailable() -> Notice:
    return Notice(
        503,
        "Checkout is temporarily unavailable",
        "We could not reach the payment service. Nothing has been charged. "
        "Please try again in a minute.",
        "SERVICE_UNAVAILABLE",
        "Service temporarily unavailable, retry later",
    )


def load_order(
    ctx: Context, order_id: str | None, key: str | None, payment_id: str | None = None
) -> tuple[Order, str, str | None]:
    """The order a buyer may pay now, its merchant's name and the payment of that order the
    page follows (``payment_id``, given when the buyer comes back from a processor's page:
    then a paid order still shows, with that payment's outcome), or the Notice that explains
    why not."""
    if not order_id:
        raise missing_order()
    if len(order_id) > MAX_ORDER_ID:
        raise unknown_order()
    try:
        order, merchant_name = orders.get_public(ctx, order_id)
        if key is not None:
            if not merchants.owns_key(ctx, order.merchant_id, key):
                raise wrong_key()
        followed = None
        if payment_id and len(payment_id) <= MAX_ORDER_ID:
            try:
                payment = payments.get(ctx, None, payment_id)
            except NotFound:
                payment = None
            if payment is not None and payment.order_id == order.id:
                followed = payment.id
    except NotFound:
        raise unknown_order() from None
    except ServiceUnavailable:
        raise unavailable() from None
    if order.status != OrderStatus.CREATED and followed is None:
        raise order_paid()
    return order, merchant_name, followed


ALL_METHODS = ("upi", "card")


def methods_of(ctx: Context, merchant_id: str) -> tuple[str, ...]:
    """The methods the merchant's processor takes, in the page's order (both when the
    processor is not loaded: the payment request then gets the API's clear refusal)."""
    try:
        merchant = merchants.record(ctx, merchant_id)
        accepted = ctx.plugins.processor(merchant.processor).methods
    except (NotFound, UnknownProcessor):
        return ALL_METHODS
    return tuple(m for m in ALL_METHODS if m in accepted) or ALL_METHODS


class CheckoutPage:
    """``GET /checkout?order_id=ID[&key=KEY][&embedded=true][&payment_id=ID]``."""

    def __init__(self, ctx: Context, templates: jinja2.Environment, assets: dict[str, str]):
        self.ctx = ctx
        self.templates = templates
        self.assets = assets

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        order_id = req.get_param("order_id")
        key = req.get_param("key")
        embedded = req.get_param("embedded") == "true"
        resp.content_type = falcon.MEDIA_HTML
        resp.cache_control = ["no-store"]
        try:
            order, merchant_name, payment_id = load_order(
                self.ctx, order_id, key, req.get_param("payment_id")
            )
        except Notice as notice:
            resp.status = notice.status
            resp.text = self.render(
                "notice.html", notice=notice, order_id=order_id or "", embedded=embedded
            )
            return
        except PaygateError as exc:  # an unexpected domain failure: still a page, not JSON
            log.warning("checkout page for %s failed: %s", order_id, exc.description)
            resp.status = 503
            resp.text = self.render(
                "notice.html", notice=unavailable(), order_id=order_id or "", embedded=embedded
            )
            return
        resp.text = self.render(
            "checkout.html",
            order=order,
            amount=money(order.amount, order.currency),
            merchant_name=merchant_name or "Merchant",
            embedded=embedded,
            payment_id=payment_id,
            methods=methods_of(self.ctx, order.merchant_id),
            # Embedded without a key yet: the page may reload itself once with the SDK's key
            # (checkout-bridge.js), so it stays hidden until its script decides. The `hidden`
            # attribute, not a rule in checkout.css: the stylesheet may still be loading. Back
            # from a processor's page (payment_id) the server cannot know whether the SDK's
            # frame holds the page (only the frame's name tells): the script decides too.
            awaiting_key=(embedded and key is None) or (payment_id is not None and not embedded),
        )

    on_head = on_get

    def render(self, name: str, **values: Any) -> str:
        return self.templates.get_template(name).render(assets=self.assets, **values)


class Root:
    """``/`` sends the buyer to ``/checkout``, keeping the query (``?order_id=...``)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = req.query_string
        resp.status = 302
        resp.content_type = falcon.MEDIA_HTML
        resp.location = "/checkout" + (f"?{query}" if query else "")

    on_head = on_get


def not_found_page(templates: jinja2.Environment, assets: dict[str, str]) -> Callable:
    """Unknown paths outside ``/api/``: an HTML page rather than the API's JSON envelope."""

    def handle(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params) -> None:
        if req.path.startswith("/api/"):
            handle_http_error(req, resp, ex, params)
            return
        notice = Notice(
            404,
            "Page not found",
            "There is no page at this address. Payment links look like "
            "/checkout?order_id=order_...",
            "NOT_FOUND_ERROR",
            URL_NOT_FOUND,
        )
        resp.status = 404
        resp.content_type = falcon.MEDIA_HTML
        resp.text = templates.get_template("notice.html").render(
            assets=assets, notice=notice, order_id="", embedded=False
        )

    return handle
