"""/api/v1/webhooks: delivery logs, manual retry, configuration, test event."""

from __future__ import annotations

from ...services import webhooks
from ..middleware import merchant_of
from . import Resource, send


class Webhooks(Resource):
    auth = True

    def on_get(self, req, resp):
        page = webhooks.list_logs(
            self.ctx, merchant_of(req), req.params.get("limit"), req.params.get("offset")
        )
        send(resp, page)


class WebhookRetry(Resource):
    auth = True

    def on_post(self, req, resp, webhook_id):
        send(resp, webhooks.retry(self.ctx, merchant_of(req), webhook_id))


class WebhookConfig(Resource):
    auth = True

    def on_get(self, req, resp):
        send(resp, webhooks.get_config(self.ctx, merchant_of(req)))

    def on_post(self, req, resp):
        send(resp, webhooks.update_config(self.ctx, merchant_of(req), self.body(req)))


class WebhookTest(Resource):
    auth = True

    def on_post(self, req, resp):
        send(resp, webhooks.send_test(self.ctx, merchant_of(req)), 202)
