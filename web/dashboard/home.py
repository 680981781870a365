"""``/dashboard`` (credentials, stats, the 14-day charts) and ``/dashboard/docs``."""

from __future__ import annotations

from paygate.config import RETRY_DELAYS_PRODUCTION, RETRY_DELAYS_TEST
from paygate.services import dashboard, payments

from . import charts
from .base import Page
from .render import credentials

RECENT = 5

# CONTRACT.md section 5, in the order a payment lives through them.
EVENTS = (
    ("payment.created", "A payment was created (status pending)."),
    ("payment.pending", "The payment is being processed."),
    ("payment.success", "The payment succeeded; fulfil the order."),
    ("payment.failed", "The payment failed; error_code and error_description say why."),
    ("payment.captured", "A successful payment was captured."),
    ("refund.created", "A refund was created (status pending)."),
    ("refund.processed", "The refund reached the buyer (processed_at is set)."),
    ("webhook.test", "Sent by the Send test webhook button on the Webhooks page."),
)


class Home(Page):
    def on_get(self, req, resp):
        merchant = self.merchant(req)
        overview = dashboard.overview(self.ctx, merchant)
        recent = payments.list_payments(self.ctx, merchant, {"limit": RECENT}).items
        self.render(
            req,
            resp,
            "home.html",
            active="home",
            credentials=credentials(merchant),
            overview=overview,
            recent=recent,
            payments_chart=charts.payments_chart(overview.days),
            volume_chart=charts.volume_chart(overview.days),
        )


class Docs(Page):
    def on_get(self, req, resp):
        settings = self.ctx.settings
        delays = [
            (n + 1, production, test)
            for n, (production, test) in enumerate(
                zip(RETRY_DELAYS_PRODUCTION, RETRY_DELAYS_TEST, strict=True)
            )
        ]
        self.render(
            req,
            resp,
            "docs.html",
            active="docs",
            credentials=credentials(self.merchant(req)),
            api_url=settings.api_url,
            checkout_url=settings.checkout_url,
            events=EVENTS,
            delays=delays,
            test_intervals=settings.webhook_retry_intervals_test,
        )
