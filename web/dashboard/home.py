"""``/dashboard`` (credentials, stats, the 14-day charts) and ``/dashboard/docs``."""

from __future__ import annotations

from paygate.config import RETRY_DELAYS_PRODUCTION, RETRY_DELAYS_TEST
from paygate.errors import API_KEY_CREATED, OVERLAP_INVALID, BadRequest, SecretUnreadable
from paygate.events import CATALOGUE
from paygate.services import dashboard, merchants, payments, webhook_secrets
from paygate.types import IssuedKey

from . import charts
from .base import Page
from .render import credentials

RECENT = 5


# The overlaps the dashboard offers for a new key: how long the old keys keep working.
OVERLAPS = [
    ("0", "Stop the old key now"),
    ("3600", "Keep the old key 1 hour"),
    ("86400", "Keep the old key 24 hours"),
    ("604800", "Keep the old key 7 days"),
]


class Home(Page):
    def page(self, req, resp, issued: IssuedKey | None = None):
        merchant = self.merchant(req)
        overview = dashboard.overview(self.ctx, merchant)
        recent = payments.list_payments(self.ctx, merchant, {"limit": RECENT}).items
        self.render(
            req,
            resp,
            "home.html",
            active="home",
            credentials=credentials(self.ctx, merchant, issued),
            overlaps=OVERLAPS,
            default_overlap="86400",
            overview=overview,
            recent=recent,
            payments_chart=charts.payments_chart(overview.days),
            volume_chart=charts.volume_chart(overview.days),
            **({"flash": {"kind": "success", "text": API_KEY_CREATED}} if issued else {}),
        )

    def on_get(self, req, resp):
        self.page(req, resp)


class NewKey(Home):
    """``POST /dashboard/keys``: a new API key; the old ones keep working for the chosen
    overlap. The answer is the home page with the new secret, shown this once (it is not
    stored, and the page is ``no-store``), not a redirect that would have to carry it."""

    def on_get(self, req, resp):
        self.redirect(req, resp, "/dashboard")

    def on_post(self, req, resp):
        choice = self.form(req).get("overlap", "")
        if choice not in dict(OVERLAPS):
            raise BadRequest(OVERLAP_INVALID.format(max_days=merchants.MAX_OVERLAP_DAYS))
        merchant, issued, _ = merchants.rotate_key(self.ctx, self.merchant(req), float(choice))
        req.context.merchant = merchant
        self.page(req, resp, issued)


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
            credentials=credentials(self.ctx, self._revealed(self.merchant(req))),
            api_url=settings.api_url,
            checkout_url=settings.checkout_url,
            events=CATALOGUE,
            delays=delays,
            test_intervals=settings.webhook_retry_intervals_test,
            secret_overlap_hours=settings.webhook_secret_overlap_seconds / 3600,
        )
