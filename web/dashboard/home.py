"""``/dashboard`` (credentials, stats and charts for a chosen period) and ``/dashboard/docs``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from paygate.config import RETRY_DELAYS_PRODUCTION, RETRY_DELAYS_TEST
from paygate.errors import (
    API_KEY_CREATED,
    FILTER_DATES_REVERSED,
    OVERLAP_INVALID,
    BadRequest,
    PaygateError,
    SecretUnreadable,
)
from paygate.events import CATALOGUE
from paygate.services import dashboard, merchants, payments, webhook_secrets
from paygate.services.dashboard import Period
from paygate.types import IssuedKey

from . import charts, filters
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


# The range picker's presets: (value of ?range=, label, days back from today; None: all).
PRESETS = (("today", "Today", 0), ("7d", "7 days", 6), ("30d", "30 days", 29), ("all", "All", None))


def chosen_period(req, today: date) -> tuple[Period | None, str]:
    """The period the home page's stats and charts cover: ``?range=`` (a preset) or
    ``?from=&to=`` (UTC dates, both included; either may be left out); None for the default
    view (stats over every payment, the chart's last 14 days). BadRequest for bad dates."""
    preset = req.get_param("range") or ""
    for value, _, back in PRESETS:
        if preset == value:
            first = None if back is None else today - timedelta(days=back)
            return Period(first, today), value
    first = filters.parse_date((req.get_param("from") or "").strip())
    last = filters.parse_date((req.get_param("to") or "").strip())
    if first is None and last is None:
        return None, ""
    if first and last and first > last:
        raise BadRequest(FILTER_DATES_REVERSED)
    return Period(first, last or max(today, first)), "custom"


def describe(period: Period | None, overview: dashboard.Overview) -> str:
    """What the charts cover, for people: "last 14 days", "01 Jan 2024 – 07 Jan 2024"."""
    if period is None:
        return f"last {dashboard.CHART_DAYS} days"
    days = overview.days
    shown = f"{days[0].day:%d %b %Y} – {days[-1].day:%d %b %Y}" if days else ""
    if period.first == period.last:
        return f"{period.last:%d %b %Y}"
    if overview.chart_clipped:
        return f"{shown} (the last {dashboard.CHART_MAX_DAYS} days of the period)"
    return shown


class Home(Page):
    def page(self, req, resp, issued: IssuedKey | None = None):
        merchant = self.merchant(req)
        today = datetime.now(UTC).date()
        error = None
        try:
            period, preset = chosen_period(req, today)
        except PaygateError as exc:
            period, preset, error = None, "", exc.description
        overview = dashboard.overview(self.ctx, merchant, today, period)
        caption = describe(period, overview)
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
            status=400 if error else 200,
            error=error,
            period=period,
            preset=preset,
            presets=PRESETS,
            range_from=period.first.isoformat() if period and period.first else "",
            range_to=period.last.isoformat() if period else "",
            caption=caption,
            payments_chart=charts.payments_chart(overview.days, caption),
            volume_chart=charts.volume_chart(overview.days, caption),
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
