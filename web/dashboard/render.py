"""Jinja2 pages: the environment, the filters pages share, flash messages, redirects."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import falcon
import jinja2
import orjson

from paygate.services import Context, auth, merchants
from paygate.services.dashboard import delivery_target
from paygate.types import IssuedKey, Merchant

from ..formatting import iso, money, timestamp
from . import security

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def rupees(amount: int | None) -> str:
    """Paise as a plain decimal for form fields: ``500.00``."""
    major, minor = divmod(int(amount or 0), 100)
    return f"{major}.{minor:02d}"


RUPEES = re.compile(r"^\d{1,12}(\.\d{1,2})?$")


def parse_rupees(text: str | None) -> int | None:
    """``"1,250.5"`` -> 125050 paise; None for anything that is not a plain positive amount."""
    cleaned = (text or "").replace(",", "").replace("₹", "").strip()
    if not RUPEES.match(cleaned):
        return None
    paise = int(Decimal(cleaned) * 100)
    return paise if paise > 0 else None


def percent(value: float) -> str:
    """``66.7%``, ``100%``, ``0%``: one decimal place, none when it is whole."""
    rounded = round(value, 1)
    if rounded == int(rounded):
        return f"{int(rounded)}%"
    return f"{rounded:.1f}%"


def pretty_json(value: Any) -> str:
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=jinja2.select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
ENV.filters.update(money=money, rupees=rupees, ts=timestamp, iso=iso, pretty_json=pretty_json)
ENV.globals["percent"] = percent
ENV.globals["delivery_target"] = delivery_target
ENV.globals["static_version"] = _static_version()


def take_flash(ctx: Context, req: falcon.Request, resp: falcon.Response) -> dict | None:
    """The message a redirect left for this page (shown once)."""
    token = security.get_cookie(ctx, req, security.FLASH_COOKIE)
    if not token:
        return None
    security.clear_cookie(ctx, req, resp, security.FLASH_COOKIE)
    data = auth.unsign(ctx, "flash", token)
    if not data or data.get("kind") not in ("success", "error", "info"):
        return None
    return {"kind": data["kind"], "text": str(data.get("text", ""))[:500]}


def redirect(
    ctx: Context,
    req: falcon.Request,
    resp: falcon.Response,
    location: str,
    text: str | None = None,
    kind: str = "success",
) -> None:
    """303 to ``location`` (post/redirect/get), with a one-time message for the next page."""
    if text:
        token = auth.sign(ctx, "flash", {"kind": kind, "text": text})
        security.set_cookie(ctx, req, resp, security.FLASH_COOKIE, token, max_age=60)
    resp.status = falcon.HTTP_303
    resp.location = location
    resp.text = ""


def who(merchant: Merchant | None) -> dict[str, str] | None:
    """What every page shows of the signed-in merchant: its name and email."""
    return {"name": merchant.name, "email": merchant.email} if merchant else None


def credentials(
    ctx: Context, merchant: Merchant, issued: IssuedKey | None = None
) -> dict[str, str | None]:
    """What the home and docs pages show: the merchant's id, current API key, and webhook
    secret (the merchant's own, shown to it alone). The API secret is not stored, so it is
    shown only where it is known: right after a new key was made (``issued``, once), or the
    seeded test merchant's published test secret in development. Else ``api_secret`` is None
    and the page shows it masked."""
    if issued is not None:
        api_key, api_secret = issued.key.api_key, issued.api_secret
    else:
        api_key, api_secret = merchant.api_key, merchants.published_test_secret(ctx, merchant)
    return {
        "merchant_id": merchant.id,
        "api_key": api_key,
        "api_secret": api_secret,
        "new_key": issued is not None,
        "webhook_secret": merchant.webhook_secret,
    }


def render(
    ctx: Context,
    req: falcon.Request,
    resp: falcon.Response,
    template: str,
    *,
    status: int = 200,
    **values: Any,
) -> None:
    merchant = getattr(req.context, "merchant", None)
    values.setdefault("flash", take_flash(ctx, req, resp))
    values.setdefault("error", None)
    values.setdefault("active", "")
    html = ENV.get_template(template).render(
        who=who(merchant),
        csrf_field=security.CSRF_FIELD,
        csrf_token=security.csrf_token_for(ctx, req),
        settings=ctx.settings,
        test_data=bool(merchant and merchant.api_key.startswith("key_test_")),
        path=req.path,
        **values,
    )
    resp.status = status
    resp.content_type = falcon.MEDIA_HTML
    resp.text = html
