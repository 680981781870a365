"""The checkout app (:3001): ``create_app(ctx)`` wires the page, the buyer's detour pages
(``/checkout/challenge/{id}``: the test processor's 3-D Secure; ``/checkout/return/{id}``: back
from any processor's page), the SDK, static assets and the three public API endpoints the page
calls on its own origin; ``get_app()`` reads the
environment (gunicorn's entry point, ``web.checkout.app:get_app()``)."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import falcon
import jinja2

from paygate.api import errors
from paygate.api.middleware import RequestIdMiddleware
from paygate.api.resources import orders, payments, system
from paygate.services import Context

from ..formatting import money
from .challenge import Challenge, Return
from .pages import CheckoutPage, Root, not_found_page
from .security import SecurityHeaders

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SDK_CACHE = "public, max-age=300"
STATIC_CACHE = "public, max-age=86400"

# The public endpoints of the API, served here too so the page is same-origin (no CORS).
API_ROUTES = [
    # The same health answer as the API's, for the checkout's own probes (deploy/kubernetes).
    ("/health", system.Health),
    ("/livez", system.Livez),
    ("/readyz", system.Readyz),
    ("/api/v1/orders/{order_id}/public", orders.OrderPublic),
    ("/api/v1/payments/public", payments.PaymentsPublic),
    ("/api/v1/payments/{payment_id}/public", payments.PaymentPublic),
]


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def asset_versions() -> dict[str, str]:
    """``/static/<name>?v=<content hash>``, so assets can be cached for a day yet never stale."""
    return {
        path.name: f"/static/{path.name}?v={fingerprint(path.read_bytes())}"
        for path in STATIC.iterdir()
        if path.is_file()
    }


def read_sdk() -> bytes:
    return resources.files("paygate.sdk").joinpath("checkout.js").read_bytes()


class CheckoutScript:
    """``GET /checkout.js``: the SDK, loadable by a ``<script>`` tag on any merchant site."""

    def __init__(self, source: bytes):
        self.source = source
        self.etag = f'"{fingerprint(source)}"'

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.cache_control = [SDK_CACHE]
        resp.set_header("Access-Control-Allow-Origin", "*")
        resp.set_header("Cross-Origin-Resource-Policy", "cross-origin")
        resp.etag = self.etag
        if self.etag in (req.get_header("If-None-Match") or ""):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = "application/javascript; charset=utf-8"
        resp.data = self.source

    on_head = on_get


class CacheStatic:
    """Long-lived caching for fingerprinted ``/static/`` assets."""

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, ok) -> None:
        if ok and req.path.startswith("/static/"):
            resp.cache_control = [STATIC_CACHE]


def templates_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("paygate.web.checkout", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["money"] = money
    return env


def create_app(ctx: Context) -> falcon.App:
    app = falcon.App(
        middleware=[
            RequestIdMiddleware(),
            SecurityHeaders(ctx.settings.frame_ancestors, ctx.settings.strict_transport_security),
            CacheStatic(),
        ]
    )
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    templates = templates_env()
    assets = asset_versions()
    app.add_error_handler(falcon.HTTPNotFound, not_found_page(templates, assets))
    app.add_route("/", Root())
    app.add_route("/checkout", CheckoutPage(ctx, templates, assets))
    app.add_route("/checkout/challenge/{payment_id}", Challenge(ctx, templates, assets))
    app.add_route("/checkout/return/{payment_id}", Return(ctx, templates, assets))
    app.add_route("/checkout.js", CheckoutScript(read_sdk()))
    app.add_static_route("/static", str(STATIC))
    for path, resource in API_ROUTES:
        app.add_route(path, resource(ctx))
    return app


def get_app() -> falcon.App:
    from paygate.wiring import build_context

    return create_app(build_context(role="checkout"))
