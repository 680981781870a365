"""/api/v1/payments/{payment_id}/refunds and /api/v1/refunds/{refund_id}"""

from __future__ import annotations

from ...services import idempotency, refunds, views
from ..middleware import merchant_of
from . import Resource, send


class PaymentRefunds(Resource):
    """Create a refund of a payment (``Idempotency-Key`` honoured)."""

    auth = True

    def on_post(self, req, resp, payment_id):
        self.create_for_merchant(
            req,
            resp,
            idempotency.REFUND_CREATE,
            lambda merchant, body, token: refunds.create(
                self.ctx, merchant, payment_id, body, token
            ),
            views.refund_view,
            target=payment_id,
        )


class Refund(Resource):
    auth = True

    def on_get(self, req, resp, refund_id):
        send(resp, views.refund_view(refunds.get(self.ctx, merchant_of(req), refund_id)))
