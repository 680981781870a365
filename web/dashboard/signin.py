"""Signing in and out, and the account page (set a password)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from paygate.errors import NotFound, PaygateError
from paygate.services import auth, limits, merchants
from paygate.types import Merchant

from . import security
from .base import Page


class Root(Page):
    """``/``: the dashboard when signed in, else the sign-in page."""

    signed_in = False

    def on_get(self, req, resp):
        self.redirect(req, resp, "/dashboard" if req.context.merchant else "/login")


class Login(Page):
    signed_in = False

    def _open_sign_in_hint(self) -> str | None:
        """The seeded test merchant's email while it signs in with any password."""
        try:
            merchant = merchants.test_merchant(self.ctx)
        except NotFound:
            return None
        return merchant.email if auth.open_sign_in(self.ctx, merchant) else None

    def _page(self, req, resp, *, email: str = "", error: str | None = None, status=200):
        self.render(
            req,
            resp,
            "login.html",
            status=status,
            email=email,
            error=error,
            next=security.safe_next(req.get_param("next")),
            hint=self._open_sign_in_hint(),
        )

    def on_get(self, req, resp):
        if req.context.merchant:
            self.redirect(req, resp, security.safe_next(req.get_param("next")))
            return
        self._page(req, resp)

    def on_post(self, req, resp):
        form = self.form(req)
        email = form.get("email", "").strip()
        client = limits.client_ip(self.ctx, req.remote_addr, req.get_header("X-Forwarded-For"))
        try:
            merchant = auth.sign_in(self.ctx, email, form.get("password", ""), client)
        except PaygateError as exc:  # wrong credentials (401) or too many attempts (429)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                resp.set_header("Retry-After", str(retry_after))
            self._page(req, resp, email=email, error=exc.description, status=exc.status)
            return
        security.start_session(self.ctx, req, resp, merchant)
        self.redirect(req, resp, security.safe_next(form.get("next")))


class Logout(Page):
    """GET asks (a link must never sign anyone out); POST signs out."""

    def on_get(self, req, resp):
        self.render(req, resp, "logout.html", active="account")

    def on_post(self, req, resp):
        security.end_session(self.ctx, req, resp)
        self.redirect(req, resp, "/login", "You have signed out.", "info")


def account_view(merchant: Merchant) -> dict[str, Any]:
    """What the account page shows of the merchant (never its password hash)."""
    shown = ("name", "email", "id", "processor", "created_at", "has_password")
    return {name: getattr(merchant, name) for name in shown}


def live_keys(ctx, merchant: Merchant) -> list:
    """The merchant's working API keys (a rotation's overlap keeps more than one), newest
    first."""
    now = datetime.now(UTC)
    return [key for key in merchants.keys_of(ctx, merchant) if key.live_at(now)]


class Account(Page):
    def _page(self, req, resp, *, error=None, field=None, status=200):
        self.render(
            req,
            resp,
            "account.html",
            status=status,
            active="account",
            error=error,
            field=field,
            account=account_view(self.merchant(req)),
            open_sign_in=auth.open_sign_in(self.ctx, self.merchant(req)),
            min_length=auth.MIN_PASSWORD_LENGTH,
            sessions=auth.live_sessions(self.ctx, self.merchant(req)),
            api_keys=live_keys(self.ctx, self.merchant(req)),
        )

    def on_get(self, req, resp):
        self._page(req, resp)

    def on_post(self, req, resp):
        form = self.form(req)
        try:
            merchant = auth.set_password(
                self.ctx,
                self.merchant(req),
                form.get("current_password", ""),
                form.get("new_password", ""),
                form.get("confirm_password", ""),
            )
        except PaygateError as exc:
            self._page(req, resp, error=exc.description, field=exc.field, status=400)
            return
        # set_password ended every session, this browser's included: it gets a new one.
        security.start_session(self.ctx, req, resp, merchant)
        self.redirect(
            req, resp, "/dashboard/account", "Password saved. Other sessions were signed out."
        )


class AccountSessions(Page):
    """``POST /dashboard/account/sessions``: sign out of every other browser."""

    def on_post(self, req, resp):
        ended = auth.end_other_sessions(
            self.ctx,
            self.merchant(req),
            security.get_cookie(self.ctx, req, security.SESSION_COOKIE),
        )
        noun = "session" if ended == 1 else "sessions"
        self.redirect(req, resp, "/dashboard/account", f"Signed out of {ended} other {noun}.")
