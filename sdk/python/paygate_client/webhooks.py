"""Verify a webhook delivery from Paygate, then get its event.

    from paygate_client import webhooks

    event = webhooks.verify(raw_body, request_headers, secret)

Two signatures exist (docs/webhooks.md):

- Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
  (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, keyed with the base64-decoded part of a
  ``whsec_`` secret; several space-separated signatures during a rotation's overlap). Sent when
  the secret is a ``whsec_`` + base64 secret, which every generated secret is.
- The compatible ``X-Webhook-Signature``: lowercase hex HMAC-SHA256 of the body keyed with the
  secret's UTF-8 bytes. Always sent.

``verify`` checks the Standard Webhooks signature, with its timestamp tolerance, when the secret
is a ``whsec_`` + base64 secret and the three ``webhook-*`` headers are present; otherwise the
compatible one. A Standard Webhooks signature that fails is a failure (no fallback to the
compatible signature, which has no timestamp and so no replay protection).

Pass the RAW body, the bytes as they arrived, before any JSON parsing: a re-serialized object
is different bytes and fails verification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SignatureVerificationError", "verify", "standard_webhooks_key"]

DEFAULT_TOLERANCE = 300


class SignatureVerificationError(Exception):
    """The delivery is not proven to come from Paygate: answer it 400 or 401, do not act on
    it."""


def standard_webhooks_key(secret: str) -> bytes | None:
    """The HMAC key of a ``whsec_`` + base64 secret; None for any other secret (such as the
    seeded ``whsec_test_abc123``, which is not base64)."""
    if not secret.startswith("whsec_"):
        return None
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def _body_bytes(payload: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    raise TypeError(
        "payload must be the raw request body (bytes, or the text as received), not "
        f"{type(payload).__name__}: a parsed and re-serialized body does not verify"
    )


def _secrets(secret: str | Iterable[str]) -> list[str]:
    found = [secret] if isinstance(secret, str) else [s for s in secret if isinstance(s, str)]
    found = [s for s in found if s]
    if not found:
        raise ValueError("a webhook secret is needed to verify a delivery")
    return found


def _check_standard(body: bytes, msg_id: str, timestamp: str, signatures: str, key: bytes) -> bool:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    ok = False
    for part in signatures.split():
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode("utf-8", "replace"), expected):
            ok = True  # keep comparing: the time taken does not say which one matched
    return ok


def _check_compatible(body: bytes, signature: str, secret: str) -> bool:
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(signature.strip().encode("utf-8", "replace"), expected)


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str | Iterable[str],
    tolerance: int | None = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and return its parsed event (``{"event", "timestamp",
    "data"}``); raise ``SignatureVerificationError`` if it does not verify.

    ``payload``: the raw body (bytes; ``str`` is taken as its UTF-8 text). ``headers``: the
    request's headers, any mapping (names compared case-insensitively). ``secret``: the
    endpoint's webhook secret, or several (the new and the old one while rotating).
    ``tolerance``: seconds ``webhook-timestamp`` may differ from now (``None``: not checked);
    applies to Standard Webhooks signatures. ``now``: the current Unix time (tests).
    """
    body = _body_bytes(payload)
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    legacy = lowered.get("x-webhook-signature")
    standard_headers = bool(msg_id and timestamp and signatures)

    verified = False
    checked_standard = False
    for candidate in _secrets(secret):
        key = standard_webhooks_key(candidate)
        if key is not None and standard_headers:
            if not checked_standard:
                _check_timestamp(timestamp or "", tolerance, now)
                checked_standard = True
            verified = _check_standard(body, msg_id or "", timestamp or "", signatures or "", key)
        elif legacy:
            verified = _check_compatible(body, legacy, candidate)
        if verified:
            break
    if not verified:
        if not standard_headers and not legacy:
            raise SignatureVerificationError(
                "no signature headers (webhook-signature or X-Webhook-Signature)"
            )
        raise SignatureVerificationError("signature does not match the secret")
    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SignatureVerificationError(f"the signed body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise SignatureVerificationError("the signed body is not a JSON object")
    return event


def _check_timestamp(value: str, tolerance: int | None, now: float | None) -> None:
    try:
        sent = int(value)
    except ValueError:
        raise SignatureVerificationError(f"webhook-timestamp is not a number: {value!r}") from None
    if tolerance is None:
        return
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        raise SignatureVerificationError(
            f"webhook-timestamp {sent} is more than {tolerance} s from now ({int(current)}): "
            "a replay, or a wrong clock"
        )
