"""/api/v1/webhooks: delivery logs, manual retry, configuration, test event, endpoints."""

from __future__ import annotations

from ...services import idempotency, views, webhook_circuits, webhook_endpoints, webhooks
from ..middleware import merchant_of
from . import Resource, send, send_answer


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


class Endpoints(Resource):
    """``/api/v1/webhooks/endpoints``: the list (the primary first) and creation (201, the
    secret in full this once; an Idempotency-Key's replay shows it masked)."""

    auth = True

    def on_get(self, req, resp):
        merchant = merchant_of(req)
        items = webhook_endpoints.list_endpoints(self.ctx, merchant)
        circuits = webhook_circuits.for_merchant(self.ctx, merchant.id)
        data = [shown(self.ctx, endpoint, circuits) for endpoint in items]
        send(resp, {"data": data, "total": len(data)})

    def on_post(self, req, resp):
        merchant = merchant_of(req)
        body = self.body(req)
        answer = idempotency.run(
            self.ctx,
            merchant.id,
            webhook_endpoints.CREATE_SCOPE,
            req.get_header("Idempotency-Key"),
            body,
            lambda token: {
                **views.webhook_endpoint_view(
                    created := webhook_endpoints.create(self.ctx, merchant, body, token),
                    created.secret,
                ),
                "circuit": webhook_circuits.CLOSED_VIEW,  # a new endpoint's breaker
            },
        )
        if answer.replayed or answer.view is None:
            send_answer(resp, answer)
        else:  # the stored answer has the secret masked; this first one shows it
            send(resp, answer.view, answer.status)


def shown(ctx, endpoint, circuits: dict | None = None) -> dict:
    """An endpoint as read later: its secret masked, and its circuit breaker (``circuits``:
    the merchant's, by endpoint id, when the caller has them already)."""
    if circuits is None:
        circuits = webhook_circuits.for_merchant(ctx, endpoint.merchant_id)
    return {
        **views.webhook_endpoint_view(endpoint, webhook_endpoints.masked_secret(ctx, endpoint)),
        "circuit": circuits.get(endpoint.id, webhook_circuits.CLOSED_VIEW),
    }


class Endpoint(Resource):
    """``/api/v1/webhooks/endpoints/{endpoint_id}``: read (secret masked), change, delete."""

    auth = True

    def on_get(self, req, resp, endpoint_id):
        send(resp, shown(self.ctx, webhook_endpoints.get(self.ctx, merchant_of(req), endpoint_id)))

    def on_patch(self, req, resp, endpoint_id):
        updated = webhook_endpoints.update(self.ctx, merchant_of(req), endpoint_id, self.body(req))
        send(resp, shown(self.ctx, updated))

    def on_delete(self, req, resp, endpoint_id):
        webhook_endpoints.delete(self.ctx, merchant_of(req), endpoint_id)
        send(resp, {"id": endpoint_id, "deleted": True})


class EndpointRotateSecret(Resource):
    """``POST .../{endpoint_id}/rotate-secret``: a new secret, in full this once."""

    auth = True

    def on_post(self, req, resp, endpoint_id):
        rotated = webhook_endpoints.rotate_secret(self.ctx, merchant_of(req), endpoint_id)
        circuits = webhook_circuits.for_merchant(self.ctx, rotated.merchant_id)
        send(
            resp,
            {
                **views.webhook_endpoint_view(rotated, rotated.secret),
                "circuit": circuits.get(rotated.id, webhook_circuits.CLOSED_VIEW),
            },
        )


class EndpointTest(Resource):
    """``POST .../{endpoint_id}/test``: a ``webhook.test`` to that endpoint only (202)."""

    auth = True

    def on_post(self, req, resp, endpoint_id):
        send(resp, webhook_endpoints.send_test(self.ctx, merchant_of(req), endpoint_id), 202)
