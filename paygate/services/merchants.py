"""Merchants: API authentication, lookups, webhook configuration."""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
import time
import uuid

from ..config import TEST_MERCHANT_ID
from ..db import merchants as repo
from ..errors import PROCESSOR_DISABLED, UNKNOWN_PROCESSOR, AuthenticationFailed, BadRequest
from ..types import Merchant
from . import Context, webhook_secrets
from .lookup import found

# A merchant's credentials are read on every API call; a few seconds of caching saves a round
# trip per request. Deactivation takes effect within this bound.
CREDENTIAL_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, Merchant]] = {}
_cache_lock = threading.Lock()


def authenticate(ctx: Context, api_key: str | None, api_secret: str | None) -> Merchant:
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
    if not hmac.compare_digest(merchant.api_secret.encode(), api_secret.encode()):
        raise AuthenticationFailed()
    return merchant


def forget_cached(api_key: str | None = None) -> None:
    with _cache_lock:
        if api_key is None:
            _cache.clear()
        else:
            _cache.pop(api_key, None)


def get(ctx: Context, merchant_id: str) -> Merchant:
    """The merchant as stored now, with its webhook secret opened: for the merchant's own
    configuration and pages. Reads that need no secret use ``record``."""
    return webhook_secrets.reveal(ctx, record(ctx, merchant_id))


def record(ctx: Context, merchant_id: str) -> Merchant:
    """The merchant as stored now; its webhook secret stays sealed."""
    with ctx.db.connection() as conn:
        return found(repo.by_id(conn, merchant_id), "Merchant")


def test_merchant(ctx: Context) -> Merchant:
    """The contract's seeded test merchant (its webhook secret stays sealed)."""
    return record(ctx, TEST_MERCHANT_ID)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def find(ctx: Context, ref: str) -> Merchant:
    """A merchant by id (a UUID) or by email, for operators' commands; else NotFound."""
    try:
        merchant_id = str(uuid.UUID(ref))
    except ValueError:
        merchant_id = None
    with ctx.db.connection() as conn:
        merchant = repo.by_id(conn, merchant_id) if merchant_id else repo.by_email(conn, ref)
    return found(merchant, "Merchant")


def set_processor(ctx: Context, merchant_id: str, processor: str) -> Merchant:
    """Route this merchant's new payments to ``processor``; unknown or disabled names are
    refused now, at configuration time, not at the first payment."""
    if processor not in ctx.plugins.processors:
        known = ", ".join(sorted(ctx.plugins.processors)) or "none"
        disabled = processor in ctx.settings.disable_plugins
        message = PROCESSOR_DISABLED if disabled else UNKNOWN_PROCESSOR
        raise BadRequest(message.format(name=processor, known=known), field="processor")
    with ctx.db.connection() as conn:
        merchant = found(repo.set_processor(conn, merchant_id, processor), "Merchant")
    forget_cached(merchant.api_key)
    return merchant
