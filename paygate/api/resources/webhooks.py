"""/api/v1/webhooks: delivery logs, manual retry, configuration, test event."""

from __future__ import annotations

from ...services import views, webhooks
from ..middleware import merchant_of
from . import Resource, send


class Webhooks(Resource):
    auth = True

    def on_get(self, req, resp):
        listing = webhooks.list_logs(
            self.ctx, merchant_of(req), req.params.get("limit"), req.params.get("offset")
        )
        send(resp, views.page(listing, views.webhook_log_view))


class WebhookRetry(Resource):
    auth = True

    def on_post(self, req, resp, webhook_id):
        log_id = webhooks.retry(self.ctx, merchant_of(req), webhook_id)
        send(resp, views.webhook_retry_view(log_id))


class WebhookConfig(Resource):
    auth = True

    def on_get(self, req, resp):
        send(resp, views.webhook_config_view(webhooks.get_config(self.ctx, merchant_of(req))))

    def on_post(self, req, resp):
        merchant = webhooks.update_config(self.ctx, merchant_of(req), self.body(req))
        send(resp, views.webhook_config_view(merchant))


class WebhookTest(Resource):
    auth = True

    def on_post(self, req, resp):
        send(resp, webhooks.send_test(self.ctx, merchant_of(req)), 202)
