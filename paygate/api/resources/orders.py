"""/api/v1/orders"""

from __future__ import annotations

from functools import partial

from ...services import idempotency, orders, views
from ..middleware import merchant_of
from . import Resource, send


class Orders(Resource):
    auth = True

    def on_post(self, req, resp):
        self.create_for_merchant(
            req, resp, idempotency.ORDER_CREATE, partial(orders.create, self.ctx), views.order_view
        )

    def on_get(self, req, resp):
        listing = orders.list_orders(
            self.ctx, merchant_of(req), req.get_param("limit"), req.get_param("offset")
        )
        send(resp, views.page(listing, views.order_view))


class Order(Resource):
    auth = True

    def on_get(self, req, resp, order_id):
        send(resp, views.order_view(orders.get(self.ctx, merchant_of(req), order_id)))


class OrderPublic(Resource):
    def on_get(self, req, resp, order_id):
        send(resp, views.order_public_view(*orders.get_public(self.ctx, order_id)))
