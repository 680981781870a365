"""The merchant API (:8000): ``create_app(ctx)`` wires routes to resources; ``get_app()`` reads
the environment (gunicorn's entry point, ``paygate.api.app:get_app()``)."""

from __future__ import annotations

import falcon

from ..services import Context
from . import errors
from .middleware import (
    AuthMiddleware,
    CORSMiddleware,
    RequestIdMiddleware,
    RequestMetrics,
    TransportSecurity,
)
from .resources import (
    events,
    openapi,
    orders,
    payments,
    plugins,
    processors,
    refunds,
    system,
    webhooks,
)

ROUTES = [
    ("/health", system.Health),
    ("/livez", system.Livez),
    ("/readyz", system.Readyz),
    ("/metrics", system.Metrics),
    ("/api/v1/test/merchant", system.TestMerchant),
    ("/api/v1/test/jobs/status", system.JobStatus),
    ("/api/v1/openapi.json", openapi.OpenApi),
    ("/api/v1/orders", orders.Orders),
    ("/api/v1/orders/{order_id}", orders.Order),
    ("/api/v1/orders/{order_id}/public", orders.OrderPublic),
    ("/api/v1/payments", payments.Payments),
    ("/api/v1/payments/public", payments.PaymentsPublic),
    ("/api/v1/payments/{payment_id}", payments.Payment),
    ("/api/v1/payments/{payment_id}/public", payments.PaymentPublic),
    ("/api/v1/payments/{payment_id}/capture", payments.Capture),
    ("/api/v1/payments/{payment_id}/release", payments.Release),
    ("/api/v1/payments/{payment_id}/refunds", refunds.PaymentRefunds),
    ("/api/v1/refunds/{refund_id}", refunds.Refund),
    ("/api/v1/webhooks", webhooks.Webhooks),
    ("/api/v1/webhooks/config", webhooks.WebhookConfig),
    ("/api/v1/webhooks/test", webhooks.WebhookTest),
    ("/api/v1/webhooks/endpoints", webhooks.Endpoints),
    ("/api/v1/webhooks/endpoints/{endpoint_id}", webhooks.Endpoint),
    ("/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", webhooks.EndpointRotateSecret),
    ("/api/v1/webhooks/endpoints/{endpoint_id}/test", webhooks.EndpointTest),
    ("/api/v1/webhooks/{webhook_id}/retry", webhooks.WebhookRetry),
    ("/api/v1/plugins", plugins.Plugins),
    ("/api/v1/events/feed", events.EventFeed),
    ("/api/v1/processors/{name}/callbacks", processors.Callbacks),
]

# Test helpers of the contract (the test merchant's key, job counters): development only. In
# production mode they are not routed, so they answer 404 like any unknown URL.
TEST_ONLY_PREFIX = "/api/v1/test/"

EXPOSED_HEADERS = ["Request-Id", "Idempotent-Replayed"]


def create_app(ctx: Context) -> falcon.App:
    app = falcon.App(
        middleware=[
            RequestMetrics(),
            RequestIdMiddleware(),
            CORSMiddleware(
                allow_origins=list(ctx.settings.allowed_origins),
                expose_headers=EXPOSED_HEADERS,
            ),
            AuthMiddleware(ctx),
            TransportSecurity(ctx.settings.strict_transport_security),
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    # ``?limit=`` is a bad value, not an absent one (it answers 400 like ``?limit=abc``).
    app.req_options.keep_blank_qs_values = True
    errors.install(app)
    for path, resource in ROUTES:
        if ctx.settings.is_production and path.startswith(TEST_ONLY_PREFIX):
            continue
        app.add_route(path, resource(ctx))
    return app


def get_app() -> falcon.App:
    from ..wiring import build_context

    return create_app(build_context(role="api"))
