"""/api/v1/payments"""

from __future__ import annotations

from functools import partial

from ...errors import NotFound
from ...services import idempotency, limits, payments, validation, views
from ..middleware import merchant_of
from . import Resource, send, send_answer


class Payments(Resource):
    auth = True

    def on_post(self, req, resp):
        self.create_for_merchant(
            req,
            resp,
            idempotency.PAYMENT_CREATE,
            partial(payments.create, self.ctx),
            views.payment_view,
        )

    def on_get(self, req, resp):
        listing = payments.list_payments(self.ctx, merchant_of(req), req.params)
        send(resp, views.page(listing, views.payment_view))


class PaymentsPublic(Resource):
    """The checkout page's create: no credentials, the merchant is the order's. Every attempt
    counts against the abuse limits (per order, client and merchant) before anything else."""

    def on_post(self, req, resp):
        body = self.body(req)
        key = req.get_header("Idempotency-Key")
        client = limits.client_ip(self.ctx, req.remote_addr, req.get_header("X-Forwarded-For"))
        merchant_id = payments.count_public_attempt(self.ctx, validation.order_id_of(body), client)
        if merchant_id is None:
            raise NotFound.of("Order")
        answer = idempotency.run(
            self.ctx,
            merchant_id,
            idempotency.PAYMENT_CREATE_PUBLIC,
            key,
            body,
            lambda token: views.payment_view(payments.create(self.ctx, None, body, token)),
        )
        send_answer(resp, answer)


class Payment(Resource):
    auth = True

    def on_get(self, req, resp, payment_id):
        send(resp, views.payment_view(payments.get(self.ctx, merchant_of(req), payment_id)))


class PaymentPublic(Resource):
    def on_get(self, req, resp, payment_id):
        send(resp, views.payment_public_view(payments.get(self.ctx, None, payment_id)))


class Capture(Resource):
    """200 with the captured payment; 202 while the processor's answer is not known
    (``capture_status: "pending"``, a job asks again)."""

    auth = True

    def on_post(self, req, resp, payment_id):
        body = self.body(req, required=False)
        captured = payments.capture(self.ctx, merchant_of(req), payment_id, body)
        status = 202 if payments.is_pending(captured, payments.CAPTURE) else 200
        send(resp, views.payment_view(captured), status)


class Release(Resource):
    """Give back an uncaptured authorization: 200 with ``released_at`` set, 202 while the
    processor's answer is not known. An Idempotency-Key replays the first answer."""

    auth = True

    def on_post(self, req, resp, payment_id):
        merchant = merchant_of(req)
        body = self.body(req, required=False)
        key = req.get_header("Idempotency-Key")

        def release(token):
            return payments.release(self.ctx, merchant, payment_id, body, token)

        if key is None:
            released = release(None)
            status = 202 if payments.is_pending(released, payments.RELEASE) else 200
            send(resp, views.payment_view(released), status)
            return
        answer = idempotency.run(
            self.ctx,
            merchant.id,
            idempotency.PAYMENT_RELEASE,
            key,
            body,
            lambda token: views.payment_view(release(token)),
            target=payment_id,
        )
        send_answer(resp, answer)
