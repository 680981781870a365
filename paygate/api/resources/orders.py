"""/api/v1/orders"""

from __future__ import annotations

from ...services import idempotency, orders
from ..middleware import merchant_of
from . import Resource, send


class Orders(Resource):
    auth = True

    def on_post(self, req, resp):
        self.create_for_merchant(req, resp, idempotency.ORDER_CREATE, orders.create)

    def on_get(self, req, resp):
        send(
            resp,
            orders.list_orders(
                self.ctx, merchant_of(req), req.get_param("limit"), req.get_param("offset")
            ),
        )


class Order(Resource):
    auth = True

    def on_get(self, req, resp, order_id):
        send(resp, orders.get(self.ctx, merchant_of(req), order_id))


class OrderPublic(Resource):
    def on_get(self, req, resp, order_id):
        send(resp, orders.get_public(self.ctx, order_id))
