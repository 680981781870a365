"""Webhook secrets at rest: sealed with AES-256-GCM, opened only to sign or to show the merchant.

The notifier needs the secret itself to sign, so it cannot be hashed like an API secret. It is
stored sealed: ``v1:`` + base64(nonce || ciphertext || tag), AES-256-GCM under the key derived
from the master key for ``webhook-secret-encryption`` (``keys.derived_key``), a random 96-bit
nonce per sealing, and the merchant id as associated data, so a sealed value copied to another
merchant's row does not open. A further webhook endpoint's secret (``webhook_endpoints``) is
sealed the same way with the endpoint's id in place of the merchant's: the ``merchant_id``
parameters below name whoever the secret belongs to. A value that does not open is refused (``SecretUnreadable``),
never used as it is. A value without the ``v1:`` prefix is a plaintext row an older version (or
a hand) wrote: it is used as it is and sealed at the next start-up (``seal_stored_plaintext``).

Opened secrets are cached per process for ``OPENED_CACHE_SECONDS`` (the delivery hot path opens
the same secret again and again), keyed by the sealed value, the merchant and the key: a
rotation writes a new sealed value, so the cache never serves a replaced secret. Never in Redis,
never logged.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..db import merchants as repo
from ..db.rows import SEALED_PREFIX
from ..errors import SecretUnreadable
from ..types import Merchant
from . import Context
from .keys import derived_key

log = logging.getLogger(__name__)

KEY_LABEL = "webhook-secret-encryption"
NONCE_BYTES = 12
OPENED_CACHE_SECONDS = 5.0  # like merchant credentials (merchants.CREDENTIAL_CACHE_SECONDS)
OPENED_CACHE_LIMIT = 10_000

_opened: dict[tuple[bytes, str, str], tuple[float, str]] = {}
_lock = threading.Lock()


def _cipher(ctx: Context) -> tuple[bytes, AESGCM]:
    key = derived_key(ctx, KEY_LABEL)  # 32 bytes: AES-256
    return key, AESGCM(key)


def is_sealed(stored: str | None) -> bool:
    return stored is not None and stored.startswith(SEALED_PREFIX)


def seal(ctx: Context, merchant_id: str, secret: str) -> str:
    """The stored form of ``secret`` for this merchant; a new nonce (and so a different value)
    every time."""
    _, cipher = _cipher(ctx)
    nonce = os.urandom(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, secret.encode("utf-8"), str(merchant_id).encode("ascii"))
    return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def open_stored(ctx: Context, merchant_id: str, stored: str) -> str:
    """The secret a stored value holds. Raises ``SecretUnreadable`` when a sealed value does not
    authenticate (wrong key, altered, or another merchant's); a plaintext row is returned as
    it is."""
    if not is_sealed(stored):
        return stored
    key = derived_key(ctx, KEY_LABEL)
    cache_key = (key, str(merchant_id), stored)
    now = time.monotonic()
    cached = _opened.get(cache_key)
    if cached is not None and cached[0] > now:
        return cached[1]
    cipher = AESGCM(key)  # only on a miss: a delivery's cached secret costs no cipher set-up
    try:
        raw = base64.b64decode(stored[len(SEALED_PREFIX) :], validate=True)
        if len(raw) <= NONCE_BYTES:
            raise ValueError("too short")
        plain = cipher.decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], str(merchant_id).encode("ascii")
        )
        secret = plain.decode("utf-8")
    except (InvalidTag, binascii.Error, ValueError):
        log.error("the webhook secret of merchant %s does not decrypt: refused", merchant_id)
        raise SecretUnreadable() from None
    with _lock:
        if len(_opened) >= OPENED_CACHE_LIMIT:
            _opened.clear()
        _opened[cache_key] = (now + OPENED_CACHE_SECONDS, secret)
    return secret


def reveal(ctx: Context, merchant: Merchant) -> Merchant:
    """The merchant with ``webhook_secret`` opened: for signing, or to show it to the merchant
    (the API's webhook config, the dashboard's webhooks and docs pages)."""
    if merchant.webhook_secret_sealed is None:
        return merchant
    secret = open_stored(ctx, merchant.id, merchant.webhook_secret_sealed)
    return replace(merchant, webhook_secret=secret)


def sealed_current(ctx: Context, merchant: Merchant) -> str | None:
    """The merchant's current secret in stored form, sealing a plaintext one."""
    if merchant.webhook_secret_sealed is not None:
        return merchant.webhook_secret_sealed
    if merchant.webhook_secret:
        return seal(ctx, merchant.id, merchant.webhook_secret)
    return None


def for_delivery(
    ctx: Context, merchant_id: str, current: str | None, previous: str | None
) -> tuple[str, tuple[str, ...]]:
    """What a delivery is signed with: the current secret and, during a rotation's overlap,
    the previous one (``previous`` is None outside the window)."""
    secret = open_stored(ctx, merchant_id, current) if current else ""
    if not previous:
        return secret, ()
    old = open_stored(ctx, merchant_id, previous)
    return secret, (() if old == secret else (old,))


def seal_stored_plaintext(ctx: Context) -> int:
    """Seal every plaintext webhook secret (current or previous) in the record; the number of
    merchants changed. Idempotent: sealed values are left alone. Run at start-up."""
    changed = 0
    _cipher(ctx)  # the key first: in development it is read with a connection of its own
    with ctx.db.connection() as conn:
        rows = repo.stored_webhook_secrets(conn)
        for row in rows:
            merchant_id = str(row["id"])
            old = (row["webhook_secret"], row["previous_webhook_secret"])
            if all(value is None or is_sealed(value) for value in old):
                continue
            new = tuple(
                value if value is None or is_sealed(value) else seal(ctx, merchant_id, value)
                for value in old
            )
            if repo.replace_stored_webhook_secrets(conn, merchant_id, old=old, new=new):
                changed += 1
    return changed
