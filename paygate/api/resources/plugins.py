"""GET /api/v1/plugins: what the gateway has loaded, for the dashboard and operators."""

from __future__ import annotations

import falcon

from ..middleware import merchant_of
from . import Resource, send


class Plugins(Resource):
    """The loaded plugins, processors, notifiers and observers (each refund policy with its scope
    in force), and where this merchant's payments go."""

    auth = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        merchant = merchant_of(req)
        view = self.ctx.plugins.catalog()
        view["merchant_processor"] = merchant.processor
        send(resp, view)
