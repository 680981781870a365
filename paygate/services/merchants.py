"""Merchants: API authentication, API keys (issue, rotate, list), lookups, processor routing.

API secrets are never stored: a key's row holds a keyed hash of its secret (``keys.keyed_hash``
under the label ``api-secret``, a key derived from ``PAYGATE_SECRET_KEY``), so the database
alone neither reveals a secret nor lets anyone check a guess against it. A new secret is handed
out once, by ``create`` or ``rotate_key``.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ..config import TEST_MERCHANT_ID
from ..db import api_keys as keys_repo
from ..db import dashboard as dashboard_repo
from ..db import merchants as repo
from ..errors import (
    API_KEY_IS_CURRENT,
    API_KEY_NOT_LIVE,
    MERCHANT_EMAIL_INVALID,
    MERCHANT_EMAIL_TAKEN,
    MERCHANT_NAME_INVALID,
    OVERLAP_INVALID,
    PROCESSOR_DISABLED,
    UNKNOWN_PROCESSOR,
    AuthenticationFailed,
    BadRequest,
)
from ..types import ApiKey, IssuedKey, Merchant
from . import Context, keys, processor_configs, webhook_secrets
from .lookup import found

log = logging.getLogger("paygate")

# A merchant's credentials are read on every API call; a few seconds of caching saves a round
# trip per request. Deactivating a merchant or revoking a key takes effect in other processes
# within this bound (at once in the process that did it); a rotation's overlap ends exactly on
# time everywhere, because the cache keeps the key's expiry and checks it on every request.
CREDENTIAL_CACHE_SECONDS = 5.0
# last_used_at is written at most this often per key (and process), never on every request.
LAST_USED_EVERY_SECONDS = 60.0
DEFAULT_OVERLAP_SECONDS = 24 * 3600
MAX_OVERLAP_DAYS = 90
SECRET_LABEL = "api-secret"
KEY_PREFIX = "key_live_"
SECRET_PREFIX = "secret_live_"
MAX_NAME_LENGTH = 255
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class _Credential:
    """What the cache keeps of a key: never its secret, only the keyed hash."""

    __slots__ = ("until", "merchant", "key_id", "secret_hash", "expires")

    def __init__(self, until: float, merchant: Merchant, key: ApiKey, secret_hash: str):
        self.until = until
        self.merchant = merchant
        self.key_id = key.id
        self.secret_hash = secret_hash
        self.expires = key.expires_at.timestamp() if key.expires_at else float("inf")


_cache: dict[str, _Credential] = {}
_cache_lock = threading.Lock()
_last_touched: dict[str, float] = {}


def secret_hash(ctx: Context, api_secret: str) -> str:
    """The keyed hash a key's row stores for its secret."""
    return keys.keyed_hash(ctx, SECRET_LABEL, api_secret.encode("utf-8"))


def authenticate(
    ctx: Context, api_key: str | None, api_secret: str | None, now: float | None = None
) -> Merchant:
    """The active merchant whose live key and secret both match, else AuthenticationFailed.
    ``now`` (unix seconds) is the clock a key's expiry is checked against."""
    if not api_key or not api_secret or len(api_key) > 64 or len(api_secret) > 64:
        raise AuthenticationFailed()
    clock = time.monotonic()
    entry = _cache.get(api_key)
    if entry is None or entry.until <= clock:
        entry = _lookup(ctx, api_key, clock)
    if (now if now is not None else time.time()) >= entry.expires:
        raise AuthenticationFailed()
    if not hmac.compare_digest(secret_hash(ctx, api_secret), entry.secret_hash):
        raise AuthenticationFailed()
    if clock - _last_touched.get(entry.key_id, -LAST_USED_EVERY_SECONDS) >= LAST_USED_EVERY_SECONDS:
        _last_touched[entry.key_id] = clock
        with ctx.db.connection() as conn:
            keys_repo.touch(conn, entry.key_id, LAST_USED_EVERY_SECONDS)
    return entry.merchant


def _lookup(ctx: Context, api_key: str, clock: float) -> _Credential:
    with ctx.db.connection() as conn:
        found_key = keys_repo.credential(conn, api_key)
    if found_key is None:
        raise AuthenticationFailed()
    merchant, key, legacy = found_key
    stored = key.secret_hash
    if legacy is not None:  # a plaintext from before migration 004: hash it now, for good
        stored = secret_hash(ctx, legacy)
        with ctx.db.connection() as conn:
            keys_repo.replace_legacy(conn, key.id, stored)
    entry = _Credential(clock + CREDENTIAL_CACHE_SECONDS, merchant, key, stored)
    with _cache_lock:
        _cache[api_key] = entry
    return entry


def forget_cached(api_key: str | None = None, *, merchant_id: str | None = None) -> None:
    """Drop cached credentials: one key's, every key of one merchant, or all."""
    with _cache_lock:
        if api_key is None and merchant_id is None:
            _cache.clear()
        if api_key is not None:
            _cache.pop(api_key, None)
        if merchant_id is not None:
            for cached_key in [k for k, e in _cache.items() if e.merchant.id == merchant_id]:
                del _cache[cached_key]


def hash_legacy_secrets(ctx: Context) -> int:
    """Replace every plaintext secret left from before migration 004 by its keyed hash (run at
    start-up by ``wiring.prepare_database``). Returns how many there were."""
    keys.derived_key(ctx, SECRET_LABEL)  # before the transaction: it may need a connection
    with ctx.db.transaction() as conn:
        legacy = keys_repo.legacy(conn)
        for key_id, plaintext in legacy:
            keys_repo.replace_legacy(conn, key_id, secret_hash(ctx, plaintext))
    return len(legacy)


# -- issuing and rotating keys ---------------------------------------------------------------


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _new_credentials() -> tuple[str, str]:
    """A fresh (API key, API secret): 24 and 43 random characters after their prefixes."""
    api_key = KEY_PREFIX + "".join(secrets.choice(_ALNUM) for _ in range(24))
    return api_key, SECRET_PREFIX + secrets.token_urlsafe(32)


def create(
    ctx: Context, name: str, email: str, processor: str | None = None
) -> tuple[Merchant, IssuedKey]:
    """A new active merchant with a fresh API key; the secret is returned this once."""
    name = (name or "").strip()
    email = (email or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise BadRequest(MERCHANT_NAME_INVALID.format(max_length=MAX_NAME_LENGTH), field="name")
    if len(email) > 255 or not EMAIL.match(email):
        raise BadRequest(MERCHANT_EMAIL_INVALID, field="email")
    if processor is not None:
        _check_processor(ctx, processor)
    api_key, api_secret = _new_credentials()
    hashed = secret_hash(ctx, api_secret)
    taken = BadRequest(MERCHANT_EMAIL_TAKEN.format(email=email), field="email")
    merchant_id = str(uuid.uuid4())
    # Sealed before it is written: a webhook secret never rests in plaintext.
    sealed = webhook_secrets.seal(ctx, merchant_id, new_webhook_secret())
    with ctx.db.transaction() as conn:
        if repo.by_email(conn, email) is not None:
            raise taken
        merchant = repo.insert(
            conn,
            id=merchant_id,
            name=name,
            email=email,
            api_key=api_key,
            secret_hash=hashed,
            webhook_secret=sealed,
            processor=processor or "test",
        )
        if merchant is None:  # a concurrent create with the same email won
            raise taken
        (key,) = keys_repo.of_merchant(conn, merchant.id)
    return merchant, IssuedKey(key=key, api_secret=api_secret)


def rotate_key(
    ctx: Context,
    merchant: Merchant,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    now: datetime | None = None,
) -> tuple[Merchant, IssuedKey, list[ApiKey]]:
    """A new key for the merchant (its secret returned this once); every other live key keeps
    working for ``overlap_seconds`` more and then stops (0: revoked now). Returns the merchant,
    the new key and the keys retired."""
    check_overlap(overlap_seconds)
    now = now or datetime.now(UTC)
    api_key, api_secret = _new_credentials()
    hashed = secret_hash(ctx, api_secret)
    with ctx.db.transaction() as conn:
        key = keys_repo.insert(conn, str(uuid.uuid4()), merchant.id, api_key, hashed)
        issued = IssuedKey(key=key, api_secret=api_secret)
        retired = keys_repo.retire_live(
            conn,
            merchant.id,
            keep=issued.key.id,
            at=now + timedelta(seconds=overlap_seconds),
            revoke=overlap_seconds == 0,
        )
        updated = found(repo.set_current_key(conn, merchant.id, issued.key.api_key), "Merchant")
    forget_cached(merchant_id=merchant.id)  # every cached key of the merchant, retired ones too
    return updated, issued, retired


def revoke_key(ctx: Context, merchant: Merchant, api_key: str) -> ApiKey:
    """Revoke one of the merchant's keys now (a leaked old key), keeping the others. The
    current key cannot be revoked: issue a new one first, or the merchant would be left with
    none. Running API processes stop accepting it within ``CREDENTIAL_CACHE_SECONDS``."""
    if api_key == merchant.api_key:
        raise BadRequest(API_KEY_IS_CURRENT.format(key=api_key, email=merchant.email), field="key")
    with ctx.db.transaction() as conn:
        revoked = keys_repo.revoke(conn, merchant.id, api_key)
    if revoked is None:
        raise BadRequest(API_KEY_NOT_LIVE.format(key=api_key, email=merchant.email), field="key")
    forget_cached(api_key)
    return revoked


def set_active(ctx: Context, merchant: Merchant, active: bool) -> Merchant:
    """Switch a merchant on or off. An inactive merchant's API keys answer 401 (in running
    processes within ``CREDENTIAL_CACHE_SECONDS``), it cannot sign in to the dashboard, and
    deactivating ends its dashboard sessions. Nothing is deleted: activate brings it back."""
    with ctx.db.transaction() as conn:
        updated = found(repo.set_active(conn, merchant.id, active), "Merchant")
        if not active:
            dashboard_repo.revoke_sessions(conn, merchant_id=merchant.id)
    forget_cached(merchant_id=merchant.id)
    return updated


def check_overlap(overlap_seconds: float) -> float:
    if not 0 <= overlap_seconds <= MAX_OVERLAP_DAYS * 86400:
        raise BadRequest(OVERLAP_INVALID.format(max_days=MAX_OVERLAP_DAYS), field="overlap")
    return overlap_seconds


def keys_of(ctx: Context, merchant: Merchant) -> list[ApiKey]:
    """The merchant's keys, newest first (revoked and expired ones included)."""
    with ctx.db.connection() as conn:
        return keys_repo.of_merchant(conn, merchant.id)


def all_merchants(ctx: Context) -> list[Merchant]:
    with ctx.db.connection() as conn:
        return repo.all_merchants(conn)


def published_test_secret(ctx: Context, merchant: Merchant) -> str | None:
    """The secret the dashboard may show: in development, the seeded test merchant's published
    test secret (while its current key is the published test key). None for everyone else: a
    secret is shown once, when it is made."""
    settings = ctx.settings
    if (
        not settings.is_production
        and merchant.id == TEST_MERCHANT_ID
        and merchant.api_key == settings.test_api_key
    ):
        return settings.test_api_secret
    return None


# -- lookups and settings --------------------------------------------------------------------


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


def owns_key(ctx: Context, merchant_id: str, api_key: str) -> bool:
    """Whether ``api_key`` is one of the merchant's unrevoked keys (the checkout's ``key=``)."""
    if not api_key or len(api_key) > 64 or "\x00" in api_key:
        return False
    with ctx.db.connection() as conn:
        found_key = keys_repo.credential(conn, api_key)
    return found_key is not None and found_key[0].id == merchant_id


def _check_processor(ctx: Context, processor: str) -> None:
    if processor not in ctx.plugins.processors:
        known = ", ".join(sorted(ctx.plugins.processors)) or "none"
        disabled = processor in ctx.settings.disable_plugins
        message = PROCESSOR_DISABLED if disabled else UNKNOWN_PROCESSOR
        raise BadRequest(message.format(name=processor, known=known), field="processor")


def set_processor(
    ctx: Context, merchant_id: str, processor: str, fallback: Sequence[str] | None = None
) -> Merchant:
    """Route this merchant's new payments to ``processor``; unknown or disabled names are
    refused now, at configuration time, not at the first payment. ``fallback``: the ordered
    processors tried when one before is unavailable before any money moved (None keeps the
    list; empty clears it). Each must be registered, appear once, and differ from
    ``processor``, and have the merchant's required settings set and readable, as the
    merchant's processor must (else the fallback would be skipped at every payment; 400
    ``fallback_processors`` otherwise)."""
    _check_processor(ctx, processor)
    if fallback is None:
        chosen = None
    else:
        chosen = check_fallback(ctx, processor, fallback)
        with ctx.db.connection() as conn:
            merchant = found(repo.by_id(conn, merchant_id), "Merchant")
        for name in chosen:
            check_fallback_settings(ctx, merchant, name)
    with ctx.db.connection() as conn:
        merchant = found(repo.set_processor(conn, merchant_id, processor, chosen), "Merchant")
    forget_cached(merchant_id=merchant.id)
    return merchant


def parse_fallback(text: str) -> list[str]:
    """``"b,c"`` -> ``["b", "c"]`` (blanks dropped; ``""`` clears the list)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def check_fallback(ctx: Context, processor: str, fallback: Sequence[str]) -> tuple[str, ...]:
    """The fallback list as stored, each name registered and enabled, none repeated and none
    the merchant's processor itself (400 on ``fallback_processors``)."""
    names = tuple(fallback)
    for name in names:
        if name == processor:
            raise BadRequest(FALLBACK_IS_PROCESSOR.format(name=name), field="fallback_processors")
        if names.count(name) > 1:
            raise BadRequest(FALLBACK_REPEATED.format(name=name), field="fallback_processors")
        try:
            _check_processor(ctx, name)
        except BadRequest as exc:
            raise BadRequest(exc.description, field="fallback_processors") from None
    return names


def check_fallback_settings(ctx: Context, merchant: Merchant, name: str) -> None:
    """Refuse (400 on ``fallback_processors``) a fallback processor that lacks required
    settings for ``merchant`` or whose stored settings do not decrypt: naming the processor,
    the settings, and the command that sets them."""
    described = processor_configs.describe(ctx, merchant.id, name)
    if described.error:
        raise BadRequest(described.error, field="fallback_processors")
    if described.missing:
        raise BadRequest(
            FALLBACK_SETTINGS_REQUIRED.format(
                processor=name,
                merchant=merchant.email,
                names=", ".join(described.missing),
                assignments=" ".join(f"{n}=..." for n in described.missing),
            ),
            field="fallback_processors",
        )


FALLBACK_SETTINGS_REQUIRED = (
    "Fallback processor '{processor}' needs these settings for merchant {merchant}: {names} "
    "(set them first with `paygate processors configure {merchant} {processor} "
    "{assignments}`)"
)
FALLBACK_IS_PROCESSOR = "Fallback processor '{name}' is the merchant's processor already"
FALLBACK_REPEATED = "Fallback processor '{name}' is listed twice"
