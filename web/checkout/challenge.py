"""The buyer's detour through a processor's page and back (Processor API v2, issue 16).

- ``GET /checkout/challenge/{payment_id}``: the test processor's simulated 3-D Secure page (card
  4000 0000 0000 3220): merchant, amount, card, and two buttons. Each posts back here with a
  token bound to the payment (a keyed hash: another site can post the form but cannot know the
  token without reading this page, which the same-origin policy forbids).
- ``POST /checkout/challenge/{payment_id}``: the simulated bank notifies Paygate exactly as a PSP
  would, through a signed callback (``callbacks.receive``, in process), then sends the buyer to
  the return URL.
- ``GET /checkout/return/{payment_id}``: where every processor's buyer comes back
  (``ChargeRequest.return_url``): Paygate asks the processor at once (``buyer_returned``), then
  shows the checkout page of the payment's order, which shows the outcome.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import parse_qs, urlencode

import falcon
import jinja2

from paygate.errors import NOT_FOUND, NotFound, PaygateError, UnknownProcessor
from paygate.services import Context, callbacks, keys, orders, payments
from paygate.types import Payment

from ..formatting import money
from .pages import Notice, unavailable

log = logging.getLogger("paygate.checkout")

TOKEN_LABEL = "checkout-challenge"
ANSWERS = ("approve", "deny")
MAX_FORM_BYTES = 1024
MAX_PAYMENT_ID = 64


def no_challenge() -> Notice:
    return Notice(
        404,
        "Nothing to verify",
        "There is no verification waiting for this payment: it may have been completed "
        "already, or it has expired. Please return to the store.",
        "NOT_FOUND_ERROR",
        NOT_FOUND.format(kind="Payment"),
    )


def challenge_token(ctx: Context, payment_id: str) -> str:
    return keys.keyed_hash(ctx, TOKEN_LABEL, payment_id.encode())


def return_path(payment_id: str) -> str:
    return f"/checkout/return/{payment_id}"


def checkout_path(payment: Payment) -> str:
    """The checkout page of the payment's order, resuming that payment."""
    return "/checkout?" + urlencode({"order_id": payment.order_id, "payment_id": payment.id})


def read_form(req: falcon.Request) -> dict[str, str]:
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    raw = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        return {}
    try:
        fields = parse_qs(raw.decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in fields.items()}


class Challenge:
    """``GET``/``POST /checkout/challenge/{payment_id}``."""

    def __init__(self, ctx: Context, templates: jinja2.Environment, assets: dict[str, str]):
        self.ctx = ctx
        self.templates = templates
        self.assets = assets

    def awaiting(self, payment_id: str) -> tuple[Payment, object]:
        """The pending payment whose processor still awaits the buyer's answer, or a Notice."""
        if len(payment_id) > MAX_PAYMENT_ID:
            raise no_challenge()
        try:
            payment = payments.get(self.ctx, None, payment_id)
            processor = self.ctx.plugins.processor(payment.processor)
        except (NotFound, UnknownProcessor):
            raise no_challenge() from None
        awaits = getattr(processor, "awaits_challenge", None)
        if awaits is None or not awaits(payment):
            raise no_challenge()
        return payment, processor

    def on_get(self, req: falcon.Request, resp: falcon.Response, payment_id: str) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.cache_control = ["no-store"]
        try:
            payment, _ = self.awaiting(payment_id)
            _, merchant_name = orders.get_public(self.ctx, payment.order_id)
        except Notice as notice:
            self.notice(resp, notice)
            return
        except PaygateError as exc:
            log.warning("challenge page for %s failed: %s", payment_id, exc.description)
            self.notice(resp, unavailable())
            return
        network = (payment.card_network or "card").upper()
        resp.text = self.render(
            "challenge.html",
            merchant_name=merchant_name or "Merchant",
            amount=money(payment.amount, payment.currency),
            card_label=f"{network} •••• {payment.card_last4 or ''}".strip(),
            token=challenge_token(self.ctx, payment.id),
            action=f"/checkout/challenge/{payment.id}",
            embedded=False,
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response, payment_id: str) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.cache_control = ["no-store"]
        form = read_form(req)
        answer = form.get("answer")
        given = form.get("token", "")
        try:
            payment, processor = self.awaiting(payment_id)
            expected = challenge_token(self.ctx, payment.id)
            if answer not in ANSWERS or not hmac.compare_digest(given, expected):
                raise no_challenge()
            # The simulated bank tells Paygate, as a PSP would: a signed callback.
            request = processor.challenge_callback(payment.id, answer)
            callbacks.receive(self.ctx, processor.name, request.body, dict(request.headers))
        except Notice as notice:
            self.notice(resp, notice)
            return
        except PaygateError as exc:
            log.warning("challenge answer for %s failed: %s", payment_id, exc.description)
            self.notice(resp, unavailable())
            return
        resp.status = falcon.HTTP_303
        resp.location = return_path(payment.id)

    def notice(self, resp: falcon.Response, notice: Notice) -> None:
        resp.status = notice.status
        resp.text = self.render("notice.html", notice=notice, order_id="", embedded=False)

    def render(self, name: str, **values) -> str:
        return self.templates.get_template(name).render(assets=self.assets, **values)


class Return:
    """``GET /checkout/return/{payment_id}``: ask the processor now, then show the outcome on
    the order's checkout page (``?payment_id=`` makes it follow that payment). Inside the SDK's
    modal the frame keeps its name, which tells the page it is embedded (checkout-bridge.js)."""

    def __init__(self, ctx: Context, templates: jinja2.Environment, assets: dict[str, str]):
        self.ctx = ctx
        self.templates = templates
        self.assets = assets

    def on_get(self, req: falcon.Request, resp: falcon.Response, payment_id: str) -> None:
        resp.cache_control = ["no-store"]
        resp.content_type = falcon.MEDIA_HTML
        if len(payment_id) > MAX_PAYMENT_ID:
            raise falcon.HTTPNotFound()
        try:
            payment = payments.buyer_returned(self.ctx, payment_id)
        except NotFound:
            raise falcon.HTTPNotFound() from None
        except PaygateError as exc:
            log.warning("buyer return for %s failed: %s", payment_id, exc.description)
            notice = unavailable()
            resp.status = notice.status
            resp.text = self.templates.get_template("notice.html").render(
                assets=self.assets, notice=notice, order_id="", embedded=False
            )
            return
        resp.status = falcon.HTTP_303
        resp.location = checkout_path(payment)
