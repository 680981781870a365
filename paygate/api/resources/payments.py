"""/api/v1/payments"""

from __future__ import annotations

from ...services import idempotency, orders, payments, validation
from ..middleware import merchant_of
from . import Resource, send, send_answer


class Payments(Resource):
    auth = True

    def on_post(self, req, resp):
        self.create_for_merchant(req, resp, idempotency.PAYMENT_CREATE, payments.create)

    def on_get(self, req, resp):
        send(resp, payments.list_payments(self.ctx, merchant_of(req), req.params))


class PaymentsPublic(Resource):
    """The checkout page's create: no credentials, the merchant is the order's."""

    def on_post(self, req, resp):
        body = self.body(req)
        key = req.get_header("Idempotency-Key")
        # A key is the order's merchant's; without one there is no need to look it up.
        merchant_id = (
            "" if key is None else orders.merchant_id_of(self.ctx, validation.order_id_of(body))
        )
        answer = idempotency.run(
            self.ctx,
            merchant_id,
            idempotency.PAYMENT_CREATE_PUBLIC,
            key,
            body,
            lambda token: payments.create(self.ctx, None, body, token),
        )
        send_answer(resp, answer)


class Payment(Resource):
    auth = True

    def on_get(self, req, resp, payment_id):
        send(resp, payments.get(self.ctx, merchant_of(req), payment_id))


class PaymentPublic(Resource):
    def on_get(self, req, resp, payment_id):
        send(resp, payments.get_public(self.ctx, payment_id))


class Capture(Resource):
    auth = True

    def on_post(self, req, resp, payment_id):
        body = self.body(req, required=False)
        send(resp, payments.capture(self.ctx, merchant_of(req), payment_id, body))
