"""Server-side keys: one master key, a derived key per purpose, and keyed hashes made with them.

The master key is ``PAYGATE_SECRET_KEY``. Without it (development only: production mode refuses
to start without one) it is a random key generated once and kept in the database, so that
development processes sharing a database agree on it. Everything that must not be recoverable
from the database alone (signed dashboard tokens, hashes of API secrets, idempotency
fingerprints of bodies that may carry card data) is keyed with a key derived here, never with a
bare hash.
"""

from __future__ import annotations

import hmac
import secrets
import threading

from ..db import dashboard as repo
from . import Context

_keys: dict[str, bytes] = {}
_lock = threading.Lock()


def derived_key(ctx: Context, label: str) -> bytes:
    """The key for one purpose (``label``), derived from the master key with HMAC-SHA256."""
    master = ctx.settings.secret_key
    cache_key = f"{label}:{'env:' + master if master else ctx.db.url}"
    key = _keys.get(cache_key)
    if key is None:
        if not master:
            with ctx.db.connection() as conn:
                master = repo.secret(conn, "signing_key", secrets.token_urlsafe(48))
        key = hmac.new(master.encode("utf-8"), label.encode("utf-8"), "sha256").digest()
        with _lock:
            _keys[cache_key] = key
    return key


def keyed_hash(ctx: Context, label: str, data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under the key for ``label``, as hex: what may be stored where a
    plain hash of secret or card-derived data must not be."""
    return hmac.new(derived_key(ctx, label), data, "sha256").hexdigest()
