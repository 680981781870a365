"""Idempotency-Key handling with Stripe's semantics on top of the compatible replay.

``begin()`` claims the key (an INSERT under a primary key, so two racing requests cannot both
win). The creating statement then stores the response in the same statement as the object
(``Token.params``), so a crash can never leave an object without its stored response.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ..db import idempotency as repo
from ..errors import BadRequest, Conflict, IdempotencyMismatch
from ..wire import compact_json
from . import Context

MAX_KEY_LENGTH = 255
# Printable ASCII (what every HTTP stack carries unchanged); a UUID v4 is the usual choice.
KEY_PATTERN = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")


@dataclass(frozen=True)
class Replay:
    """A stored response to send again, byte for byte."""

    status: int
    body: bytes


@dataclass
class Token:
    """Ownership of a claimed key until the creating statement completes it."""

    merchant_id: str
    key: str
    code: int | None = None
    body: bytes | None = None

    def params(self, code: int, view: dict[str, Any]) -> dict[str, Any]:
        """Fix the response now; return the ``idem_*`` parameters of the creating statement."""
        self.code, self.body = code, compact_json(view)
        return {"idem_key": self.key, "idem_code": code, "idem_body": self.body}


NO_TOKEN = {"idem_key": None, "idem_code": None, "idem_body": None}


def token_params(token: Token | None, code: int, view: dict[str, Any]) -> dict[str, Any]:
    return NO_TOKEN if token is None else token.params(code, view)


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def begin(ctx: Context, merchant_id: str, key: str, fingerprint: str) -> Token | Replay:
    """Claim ``key`` for this request (Token), or answer what an earlier request did with it:
    its stored response (Replay), 422 when the parameters differ, 409 while it is in flight."""
    if not KEY_PATTERN.fullmatch(key):
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            field="Idempotency-Key",
        )
    with ctx.db.connection() as conn:
        existing = repo.claim(conn, merchant_id, key, fingerprint)
    if existing is None:
        return Token(merchant_id=merchant_id, key=key)
    if existing["request_hash"] != fingerprint:
        raise IdempotencyMismatch()
    if existing["status"] != "complete":
        raise Conflict("A request with this Idempotency-Key is still being processed")
    return Replay(status=existing["response_code"], body=bytes(existing["response_body"]))


def abandon(ctx: Context, token: Token) -> None:
    """The request failed before completing: errors are not stored, the key is free again."""
    with ctx.db.connection() as conn:
        repo.release(conn, token.merchant_id, token.key)
