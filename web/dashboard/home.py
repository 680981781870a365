"""``/dashboard`` (credentials, stats, the 14-day charts) and ``/dashboard/docs``."""

from __future__ import annotations

from paygate.config import RETRY_DELAYS_PRODUCTION, RETRY_DELAYS_TEST
from paygate.errors import SecretUnreadable
from paygate.events import CATALOGUE
from paygate.services import dashboard, payments, webhook_secrets

from . import charts
from .base import Page
from .render import credentials

RECENT = 5


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
    def _revealed(self, merchant):
        """The webhook snippet carries the merchant's own secret: opened for this page (a
        placeholder when it does not decrypt; the webhooks page says why)."""
        try:
            return webhook_secrets.reveal(self.ctx, merchant)
        except SecretUnreadable:
            return merchant

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
            credentials=credentials(self._revealed(self.merchant(req))),
            api_url=settings.api_url,
            checkout_url=settings.checkout_url,
            events=CATALOGUE,
            delays=delays,
            test_intervals=settings.webhook_retry_intervals_test,
            secret_overlap_hours=settings.webhook_secret_overlap_seconds / 3600,
        )
