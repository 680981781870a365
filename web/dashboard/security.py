"""Sessions, CSRF and safe defaults for every dashboard request.

- ``pg_session``: a signed session token (HttpOnly, SameSite=Lax); pages under ``/dashboard``
  without one redirect to ``/login``.
- ``pg_csrf``: a random per-browser nonce (HttpOnly); every form carries
  ``csrf_token = HMAC(nonce, merchant)`` and a POST whose token does not match is refused (403).
- Form bodies are read here, bounded, once; security headers go on every response.

In production mode every cookie is ``Secure`` and named with the ``__Host-`` prefix
(``__Host-pg_session``...: the browser then keeps it only from https, for this host, on path
``/``, so no sibling subdomain can plant or overwrite it), and responses carry HSTS.
Development keeps the plain names, ``Secure`` only behind https.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, quote

import falcon

from paygate.errors import FORM_EXPIRED, FORM_NOT_FROM_PAGE, FORM_TOO_LARGE, FORM_UNREADABLE
from paygate.services import Context, auth
from paygate.types import Merchant

# Answered without a session or a cookie (probes carry none): the health and probe paths.
PROBE_PATHS = frozenset({"/health", "/livez", "/readyz"})

HOST_PREFIX = "__Host-"
SESSION_COOKIE = "pg_session"
CSRF_COOKIE = "pg_csrf"
FLASH_COOKIE = "pg_flash"
CSRF_FIELD = "csrf_token"
# What ``secrets.token_urlsafe`` makes; any other pg_csrf cookie is replaced with a new nonce.
NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 20

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class FormRefused(Exception):
    """A POST without a valid CSRF token, or a body that is not a small urlencoded form."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def secure_cookies(ctx: Context, req: falcon.Request) -> bool:
    return (
        ctx.settings.is_production
        or req.forwarded_scheme == "https"
        or ctx.settings.dashboard_url.startswith("https:")
    )


def cookie_name(ctx: Context, name: str) -> str:
    """The name a cookie has in this mode: ``__Host-<name>`` in production."""
    return HOST_PREFIX + name if ctx.settings.is_production else name


def get_cookie(ctx: Context, req: falcon.Request, name: str) -> str | None:
    return req.cookies.get(cookie_name(ctx, name))


def set_cookie(
    ctx: Context, req: falcon.Request, resp: falcon.Response, name: str, value: str, **kw
) -> None:
    # ``__Host-`` requires Secure, path "/" and no Domain (production sets all three).
    resp.set_cookie(
        cookie_name(ctx, name),
        value,
        path="/",
        secure=secure_cookies(ctx, req),
        http_only=True,
        same_site="Lax",
        **kw,
    )


def clear_cookie(ctx: Context, req: falcon.Request, resp: falcon.Response, name: str) -> None:
    if ctx.settings.is_production:  # a __Host- cookie is only replaced by a Secure one
        resp.set_cookie(
            cookie_name(ctx, name), "", path="/", secure=True, http_only=True, max_age=0
        )
        return
    resp.unset_cookie(name, path="/")


def read_form(req: falcon.Request) -> dict[str, str]:
    """The urlencoded body as {name: first value}; bounded in size and field count."""
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormRefused(FORM_NOT_FROM_PAGE)
    length = req.content_length or 0
    if length > MAX_FORM_BYTES:
        raise FormRefused(FORM_TOO_LARGE)
    raw = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        raise FormRefused(FORM_TOO_LARGE)
    try:
        fields = parse_qs(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(FORM_UNREADABLE) from None
    return {name: values[0].replace("\x00", "") for name, values in fields.items()}


def login_url(req: falcon.Request) -> str:
    if req.method == "GET" and req.path.startswith("/dashboard"):
        target = req.path + (f"?{req.query_string}" if req.query_string else "")
        return "/login?next=" + quote(target, safe="/")
    return "/login"


def safe_next(value: str | None) -> str:
    """Only a path inside the dashboard: never another site (open redirect)."""
    if (
        value
        and value.startswith("/dashboard")
        and "//" not in value
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return "/dashboard"


class SessionMiddleware:
    """Who is signed in, the CSRF nonce, the form, and the redirect to /login."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.merchant = None
        req.context.form = {}
        nonce = get_cookie(self.ctx, req, CSRF_COOKIE)
        if req.path.startswith("/static/") or req.path in PROBE_PATHS:  # no form, no cookie
            req.context.csrf_nonce = nonce or ""
            return
        if not nonce or not NONCE.fullmatch(nonce):
            nonce = secrets.token_urlsafe(24)
            set_cookie(self.ctx, req, resp, CSRF_COOKIE, nonce)
        req.context.csrf_nonce = nonce

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params):
        if resource is None or getattr(resource, "static", False):
            return
        req.context.page = resource  # its own 404 page, should a lookup find nothing
        token = get_cookie(self.ctx, req, SESSION_COOKIE)
        if token:
            req.context.merchant = auth.session_merchant(self.ctx, token)
            if req.context.merchant is None:
                clear_cookie(self.ctx, req, resp, SESSION_COOKIE)
        if getattr(resource, "signed_in", True) and req.context.merchant is None:
            raise falcon.HTTPSeeOther(login_url(req))
        if req.method == "POST":
            req.context.form = read_form(req)
            merchant_id = req.context.merchant.id if req.context.merchant else None
            if not auth.csrf_ok(
                self.ctx, req.context.csrf_nonce, merchant_id, req.context.form.get(CSRF_FIELD)
            ):
                raise FormRefused(FORM_EXPIRED)

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "same-origin")
        if self.ctx.settings.strict_transport_security:
            resp.set_header(
                "Strict-Transport-Security", self.ctx.settings.strict_transport_security
            )
        if resource is not None and getattr(resource, "static", False):
            return
        resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        resp.set_header("X-Frame-Options", "DENY")
        resp.set_header("Cache-Control", "no-store")


def csrf_token_for(ctx: Context, req: falcon.Request) -> str:
    merchant = getattr(req.context, "merchant", None)
    return auth.csrf_token(ctx, req.context.csrf_nonce, merchant.id if merchant else None)


def start_session(
    ctx: Context, req: falcon.Request, resp: falcon.Response, merchant: Merchant
) -> None:
    """Sign in: a new session cookie and a new CSRF nonce (tokens of the old one stop working)."""
    set_cookie(ctx, req, resp, SESSION_COOKIE, auth.new_session(ctx, merchant))
    req.context.csrf_nonce = secrets.token_urlsafe(24)
    set_cookie(ctx, req, resp, CSRF_COOKIE, req.context.csrf_nonce)
    req.context.merchant = merchant


def end_session(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    """Sign out: the session ends on the server (every copy of the cookie stops working)."""
    auth.end_session(ctx, get_cookie(ctx, req, SESSION_COOKIE))
    clear_cookie(ctx, req, resp, SESSION_COOKIE)
    req.context.csrf_nonce = secrets.token_urlsafe(24)
    set_cookie(ctx, req, resp, CSRF_COOKIE, req.context.csrf_nonce)
    req.context.merchant = None
