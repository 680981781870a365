"""The merchant dashboard (:3000): ``create_app(ctx)`` wires pages to routes; ``get_app()``
builds the context from the environment (gunicorn's entry point, ``web.dashboard.app:get_app``).

Pages call the services layer directly (no HTTP hop to the API). Every page under
``/dashboard`` needs a signed-in merchant; every form needs its CSRF token (see security.py).
"""

from __future__ import annotations

import logging

import falcon

from paygate.errors import NotFound, PaygateError
from paygate.services import Context

from . import export, home, processor, render, signin, transactions, webhooks
from .base import Health, Livez, Readyz, StaticFiles
from .security import FormRefused, SessionMiddleware

log = logging.getLogger("paygate.dashboard")

ROUTES = [
    ("/", signin.Root),
    ("/login", signin.Login),
    ("/logout", signin.Logout),
    ("/static/{name}", StaticFiles),
    ("/health", Health),
    ("/livez", Livez),
    ("/readyz", Readyz),
    ("/dashboard", home.Home),
    ("/dashboard/docs", home.Docs),
    ("/dashboard/keys", home.NewKey),
    ("/dashboard/account", signin.Account),
    ("/dashboard/account/sessions", signin.AccountSessions),
    ("/dashboard/transactions", transactions.Transactions),
    ("/dashboard/transactions.csv", export.TransactionsCsv),
    ("/dashboard/transactions/{payment_id}", transactions.Transaction),
    ("/dashboard/transactions/{payment_id}/capture", transactions.Capture),
    ("/dashboard/transactions/{payment_id}/refunds", transactions.Refund),
    ("/dashboard/webhooks", webhooks.Webhooks),
    ("/dashboard/webhooks/endpoints", webhooks.Endpoints),
    ("/dashboard/webhooks/{log_id}", webhooks.Delivery),
    ("/dashboard/webhooks/{log_id}/retry", webhooks.Retry),
    ("/dashboard/processor", processor.Processor),
]


def _error_page(ctx: Context, req, resp, status: int, title: str, message: str) -> None:
    try:
        render.render(
            ctx, req, resp, "error.html", status=status, title=title, message=message, flash=None
        )
    except Exception:  # the page itself failed (say, the database is down): plain text
        resp.status = status
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = f"{title}\n\n{message}\n"


def install_error_pages(app: falcon.App, ctx: Context) -> None:
    def refused(req, resp, ex: FormRefused, params):
        _error_page(ctx, req, resp, 403, "Form refused", ex.message)

    def domain(req, resp, ex: PaygateError, params):
        page = getattr(req.context, "page", None)
        if isinstance(ex, NotFound) and page is not None and page.not_found(req, resp):
            return
        if ex.status == 404:
            _error_page(ctx, req, resp, 404, "Not found", ex.description)
        elif ex.status == 503:
            _error_page(ctx, req, resp, 503, "Temporarily unavailable", ex.description)
        else:
            _error_page(ctx, req, resp, ex.status, "Request refused", ex.description)

    def http(req, resp, ex: falcon.HTTPError, params):
        if ex.status_code == 404:
            message = "There is no page at this address."
            _error_page(ctx, req, resp, 404, "Page not found", message)
        else:
            message = ex.description or ex.title or "The request could not be handled."
            _error_page(ctx, req, resp, ex.status_code, ex.title or "Error", message)

    def unexpected(req, resp, ex: Exception, params):
        log.exception("unhandled error on %s %s", req.method, req.path)
        message = "Something went wrong on our side. Nothing was changed; try again."
        _error_page(ctx, req, resp, 500, "Something went wrong", message)

    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(falcon.HTTPError, http)
    app.add_error_handler(PaygateError, domain)
    app.add_error_handler(FormRefused, refused)


def create_app(ctx: Context) -> falcon.App:
    app = falcon.App(middleware=[SessionMiddleware(ctx)])
    app.req_options.strip_url_path_trailing_slash = True
    install_error_pages(app, ctx)
    for path, resource in ROUTES:
        app.add_route(path, resource(ctx))
    return app


def get_app() -> falcon.App:
    from paygate.wiring import build_context

    return create_app(build_context(role="dashboard"))
