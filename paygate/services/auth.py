"""Dashboard sign-in: scrypt password hashes, the signing key, signed session and CSRF tokens.

A session cookie is a signed token (HMAC-SHA256) naming a row of ``dashboard_sessions``; the
row (live until it expires or is revoked) is the session, so any dashboard process, before or
after a restart, accepts it, and ending it ends every copy of the cookie. The key is
``PAYGATE_SECRET_KEY`` or, when that is unset, one generated once and kept in the database.
Setting a new password ends every session of the merchant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import replace
from typing import Any

import orjson

from ..config import TEST_MERCHANT_ID
from ..db import dashboard as repo
from ..db import merchants as merchants_repo
from ..errors import (
    INVALID_SIGN_IN,
    PASSWORD_INCORRECT,
    PASSWORD_TOO_COMMON,
    PASSWORD_TOO_LONG,
    PASSWORD_TOO_SHORT,
    PASSWORDS_DIFFER,
    TOO_MANY_SIGN_INS,
    AuthenticationFailed,
    BadRequest,
    RateLimited,
)
from ..types import Merchant
from . import Context, keys, limits
from .common_passwords import is_common

SESSION_SECONDS = 12 * 3600
# NIST SP 800-63B: at least 8 characters, and none of the most common passwords (kept at 8, so
# existing passwords and integrations stay valid; the list refuses the guessable ones).
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256

# OWASP's scrypt parameters: N=2**17, r=8, p=1 (128 MiB and ~0.3-0.5 s here per hash: a
# dashboard process signing in 8 staff at once needs about 1 GiB for it). Hashes made with
# older parameters are re-made on the next successful sign-in.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**17, 8, 1, 32
_SCRYPT_MAXMEM = 2 * 128 * SCRYPT_N * SCRYPT_R * SCRYPT_P  # twice what the work needs


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- passwords ------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The one place scrypt runs (the security tests count its calls)."""
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=max(_SCRYPT_MAXMEM, 2 * 128 * n * r * p),
        dklen=SCRYPT_LEN,
    )


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or int(n) > SCRYPT_N or int(r) > 64 or int(p) > 16:
            return False
        computed = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(computed, _unb64(digest))


def needs_rehash(stored: str | None) -> bool:
    """Whether a hash was made with other parameters than today's."""
    parts = (stored or "").split("$")
    return len(parts) != 6 or parts[:4] != ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P)]


_dummy_hash: list[str] = []


def _dummy() -> str:
    """A hash of a random password with today's parameters: what an attempt is checked against
    when there is no real hash (unknown email, no password set, the open test sign-in)."""
    if not _dummy_hash:
        _dummy_hash.append(hash_password(secrets.token_urlsafe(16)))
    return _dummy_hash[0]


def open_sign_in(ctx: Context, merchant: Merchant) -> bool:
    """The seeded test merchant signs in with any password until one is set (never in
    production mode)."""
    return (
        not merchant.has_password
        and merchant.id == TEST_MERCHANT_ID
        and not ctx.settings.is_production
    )


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{-(-seconds // 60)} minutes"


def sign_in(ctx: Context, email: str, password: str, client: str = "unknown") -> Merchant:
    """The active merchant with this email and password, else AuthenticationFailed.

    Every attempt first counts against the sign-in limits (per client, per account from that
    client, per account; ``limits.sign_in_buckets``) in one atomic statement: over a limit it is
    refused (RateLimited, 429) without checking anything, so parallel guesses cannot get more
    checks than the limit. An admitted attempt costs exactly one scrypt verification whether or
    not the account exists or has a password. A success takes its hit back, clears the
    account-from-this-client window and re-hashes a password stored with older parameters.
    """
    email = (email or "").strip()
    password = password or ""
    if not email or len(email) > 255 or len(password) > MAX_PASSWORD_LENGTH:
        raise AuthenticationFailed(INVALID_SIGN_IN)
    buckets = limits.sign_in_buckets(ctx, email, client)
    try:
        limits.hit(ctx, buckets)
    except RateLimited as exc:
        wait = _wait_text(exc.retry_after)
        raise RateLimited(exc.retry_after, TOO_MANY_SIGN_INS.format(wait=wait)) from None
    with ctx.db.connection() as conn:
        merchant = merchants_repo.by_email(conn, email)
    known = merchant is not None and merchant.is_active
    stored = merchant.password_hash if known and merchant.has_password else None
    matches = verify_password(password, stored or _dummy())  # always exactly one scrypt
    ok = known and (matches if stored else open_sign_in(ctx, merchant))
    if not ok:
        raise AuthenticationFailed(INVALID_SIGN_IN)
    # A success is not a guess: the client's and the account's windows take its hit back (an
    # office behind one address signs in all day), and the owner's failures from here are moot.
    limits.uncount(ctx, [buckets[0], buckets[2]])
    limits.forget(ctx, [buckets[1]])
    if stored and needs_rehash(stored):
        new_hash = hash_password(password)
        with ctx.db.connection() as conn:
            merchants_repo.set_password_hash(conn, merchant.id, new_hash)
        merchant = replace(merchant, password_hash=new_hash)
    return merchant


def set_password(
    ctx: Context,
    merchant: Merchant,
    current: str,
    new: str,
    confirm: str,
    *,
    require_current: bool = True,
) -> Merchant:
    """Set a new password (the current one is required once one exists, unless an operator
    sets it: ``paygate merchants set-password``) and end every session of the merchant.
    Returns the merchant."""
    if (
        require_current
        and merchant.has_password
        and not verify_password(current or "", merchant.password_hash)
    ):
        raise BadRequest(PASSWORD_INCORRECT, field="current_password")
    check_new_password(new)
    if new != confirm:
        raise BadRequest(PASSWORDS_DIFFER, field="confirm_password")
    password_hash = hash_password(new)
    with ctx.db.transaction() as conn:
        merchants_repo.set_password_hash(conn, merchant.id, password_hash)
        repo.revoke_sessions(conn, merchant_id=merchant.id)  # every browser signs in again
    return replace(merchant, password_hash=password_hash)


def check_new_password(new: str | None) -> None:
    """A new password's rules: 8 to 256 characters and not one of the most common passwords
    (compared case-insensitively). BadRequest naming the field otherwise."""
    if len(new or "") < MIN_PASSWORD_LENGTH:
        raise BadRequest(
            PASSWORD_TOO_SHORT.format(length=MIN_PASSWORD_LENGTH), field="new_password"
        )
    if len(new) > MAX_PASSWORD_LENGTH:
        raise BadRequest(PASSWORD_TOO_LONG.format(length=MAX_PASSWORD_LENGTH), field="new_password")
    if is_common(new):
        raise BadRequest(PASSWORD_TOO_COMMON, field="new_password")


# -- signing --------------------------------------------------------------------------------


def signing_key(ctx: Context, purpose: str) -> bytes:
    """A key for one purpose (``session``, ``csrf``, ``flash``) derived from the master key."""
    return keys.derived_key(ctx, f"paygate-dashboard:{purpose}")


def sign(ctx: Context, purpose: str, data: dict[str, Any]) -> str:
    body = _b64(orjson.dumps(data))
    mac = hmac.new(signing_key(ctx, purpose), body.encode("ascii"), "sha256").digest()
    return f"{body}.{_b64(mac)}"


def unsign(ctx: Context, purpose: str, token: str | None) -> dict[str, Any] | None:
    """The data of a token we signed for ``purpose``, or None (tampered, malformed)."""
    # A cookie is whatever the browser sends: non-ASCII text is not ours (and not a 500).
    if not token or len(token) > 4096 or not token.isascii() or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    expected = hmac.new(signing_key(ctx, purpose), body.encode("ascii"), "sha256").digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        data = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# -- sessions and CSRF ----------------------------------------------------------------------


def _session_id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _session_key(ctx: Context, token: str | None) -> str | None:
    """The stored key (hash) of the session a cookie names, if the cookie is ours."""
    data = unsign(ctx, "session", token)
    session_id = data.get("s") if data else None
    return _session_id_hash(session_id) if isinstance(session_id, str) else None


def new_session(ctx: Context, merchant: Merchant, now: float | None = None) -> str:
    """Start a session for the merchant: its row, and the signed token for the cookie."""
    session_id = secrets.token_urlsafe(24)
    expires = int((now or time.time()) + SESSION_SECONDS)
    with ctx.db.connection() as conn:
        repo.insert_session(conn, _session_id_hash(session_id), merchant.id, expires)
    return sign(ctx, "session", {"s": session_id})


def _idle_seconds(ctx: Context) -> float:
    return ctx.settings.session_idle_minutes * 60.0


def session_merchant(ctx: Context, token: str | None) -> Merchant | None:
    """The signed-in, active merchant of a session token, or None."""
    key = _session_key(ctx, token)
    if key is None:
        return None
    with ctx.db.connection() as conn:
        merchant = repo.session_merchant(conn, key, _idle_seconds(ctx))
    return merchant if merchant is not None and merchant.is_active else None


def end_session(ctx: Context, token: str | None) -> None:
    """Sign out: the token's session ends, for this browser and any copy of its cookie."""
    key = _session_key(ctx, token)
    if key is not None:
        with ctx.db.connection() as conn:
            repo.revoke_sessions(conn, key=key)


def end_other_sessions(ctx: Context, merchant: Merchant, token: str | None) -> int:
    """Sign out everywhere else: every live session of the merchant but the token's ends."""
    with ctx.db.connection() as conn:
        return repo.revoke_sessions(conn, merchant_id=merchant.id, keep=_session_key(ctx, token))


def live_sessions(ctx: Context, merchant: Merchant) -> int:
    """How many browsers the merchant is signed in on now."""
    with ctx.db.connection() as conn:
        return repo.live_sessions(conn, merchant.id, _idle_seconds(ctx))


def csrf_token(ctx: Context, nonce: str, merchant_id: str | None) -> str:
    """The form token for a browser's CSRF nonce (its cookie), bound to who is signed in."""
    message = f"{nonce}|{merchant_id or ''}".encode()
    return _b64(hmac.new(signing_key(ctx, "csrf"), message, "sha256").digest())


def csrf_ok(ctx: Context, nonce: str | None, merchant_id: str | None, token: Any) -> bool:
    # compare_digest refuses non-ASCII str (TypeError): such a token cannot be ours anyway.
    if not nonce or not isinstance(token, str) or not token or not token.isascii():
        return False
    return hmac.compare_digest(csrf_token(ctx, nonce, merchant_id), token)
