"""Merchants: API authentication, lookups, webhook configuration."""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
import time
import uuid
from typing import Any

from ..db import merchants as repo
from ..errors import (
    PROCESSOR_DISABLED,
    UNKNOWN_PROCESSOR,
    AuthenticationFailed,
    BadRequest,
    NotFound,
)
from . import Context

# A merchant's credentials are read on every API call; a few seconds of caching saves a round
# trip per request. Deactivation takes effect within this bound.
CREDENTIAL_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def authenticate(ctx: Context, api_key: str | None, api_secret: str | None) -> dict[str, Any]:
    """The active merchant whose key and secret both match, else AuthenticationFailed."""
    if not api_key or not api_secret or len(api_key) > 64 or len(api_secret) > 64:
        raise AuthenticationFailed()
    now = time.monotonic()
    cached = _cache.get(api_key)
    if cached and cached[0] > now:
        merchant = cached[1]
    else:
        with ctx.db.connection() as conn:
            merchant = repo.by_credentials(conn, api_key)
        if merchant is None:
            raise AuthenticationFailed()
        with _cache_lock:
            _cache[api_key] = (now + CREDENTIAL_CACHE_SECONDS, merchant)
    if not hmac.compare_digest(merchant["api_secret"].encode(), api_secret.encode()):
        raise AuthenticationFailed()
    return merchant


def forget_cached(api_key: str | None = None) -> None:
    with _cache_lock:
        if api_key is None:
            _cache.clear()
        else:
            _cache.pop(api_key, None)


def get(ctx: Context, merchant_id: str) -> dict[str, Any]:
    with ctx.db.connection() as conn:
        merchant = repo.by_id(conn, merchant_id)
    if merchant is None:
        raise NotFound.of("Merchant")
    return merchant


def test_merchant(ctx: Context) -> dict[str, Any]:
    from ..config import TEST_MERCHANT_ID

    merchant = get(ctx, TEST_MERCHANT_ID)
    return {
        "id": str(merchant["id"]),
        "email": merchant["email"],
        "api_key": merchant["api_key"],
        "seeded": True,
    }


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def webhook_config_view(merchant: dict[str, Any]) -> dict[str, Any]:
    return {
        "webhook_url": merchant["webhook_url"] or None,
        "webhook_secret": merchant["webhook_secret"],
    }


def find(ctx: Context, ref: str) -> dict[str, Any]:
    """A merchant by id (a UUID) or by email, for operators' commands; else NotFound."""
    try:
        merchant_id = str(uuid.UUID(ref))
    except ValueError:
        merchant_id = None
    with ctx.db.connection() as conn:
        merchant = repo.by_id(conn, merchant_id) if merchant_id else repo.by_email(conn, ref)
    if merchant is None:
        raise NotFound.of("Merchant")
    return merchant


def set_processor(ctx: Context, merchant_id: str, processor: str) -> dict[str, Any]:
    """Route this merchant's new payments to ``processor``; unknown or disabled names are
    refused now, at configuration time, not at the first payment."""
    if processor not in ctx.plugins.processors:
        known = ", ".join(sorted(ctx.plugins.processors)) or "none"
        disabled = processor in ctx.settings.disable_plugins
        message = PROCESSOR_DISABLED if disabled else UNKNOWN_PROCESSOR
        raise BadRequest(message.format(name=processor, known=known), field="processor")
    with ctx.db.connection() as conn:
        row = repo.set_processor(conn, merchant_id, processor)
    if row is None:
        raise NotFound.of("Merchant")
    forget_cached(row["api_key"])
    return row
