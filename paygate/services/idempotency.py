"""The one idempotent-create flow (Idempotency-Key with Stripe's semantics), for every edge.

``run(ctx, merchant_id, scope, key, body, create)`` is what the API's creating POSTs and the
dashboard's refund form call. A key belongs to (merchant, key); what makes two requests "the
same" is the scope's name (``REFUND_CREATE``...), its target (the payment refunded) and the
body as parsed JSON, never a URL. ``begin()`` claims the key (an INSERT under a primary key, so
two racing requests cannot both win); the creating statement then stores the response in the
same statement as the object (``Token.params``), so a crash can never leave an object without
its stored response.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..db import idempotency as repo
from ..errors import IDEMPOTENCY_KEY_IN_FLIGHT, Conflict, IdempotencyMismatch, InvalidIdempotencyKey
from ..wire import compact_json
from . import Context, keys

MAX_KEY_LENGTH = 255
# Printable ASCII (what every HTTP stack carries unchanged); a UUID v4 is the usual choice.
KEY_PATTERN = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")
CREATED = 201

# The creating operations, by name. One key reused on another operation answers 422.
ORDER_CREATE = "orders.create"
PAYMENT_CREATE = "payments.create"
PAYMENT_CREATE_PUBLIC = "payments.create_public"  # the checkout page's; merchant from the order
REFUND_CREATE = "refunds.create"  # target: the payment refunded
PAYMENT_RELEASE = "payments.release"  # target: the payment released


@dataclass(frozen=True)
class Answer:
    """What a creating request answers: ``body`` is the stored bytes, sent as they are. ``view``
    is the created object's view, None on a replay."""

    status: int
    body: bytes
    replayed: bool = False
    view: dict[str, Any] | None = None


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


# Labels of the keys (``keys.derived_key``) the fingerprints are made with.
FINGERPRINT_KEY = "paygate-idempotency:fingerprint"
CARD_KEY = "paygate-idempotency:card"
CARD_FIELD = "card"
CVV_FIELD = "cvv"
# What migration 007 left of a fingerprint made before they were keyed: compared with nothing.
LEGACY_FINGERPRINT = "legacy"


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def redacted(ctx: Context, body: Any) -> Any:
    """``body`` with its card replaced by a keyed MAC of what identifies the card (number,
    expiry, holder, exactly as sent). The CVV never enters: a retry differing only in its CVV
    is the same request. Two different cards still differ; no unkeyed function of card data is
    ever computed, so nothing derived from a card can be brute-forced from the database."""
    if not isinstance(body, dict) or CARD_FIELD not in body:
        return body
    card = body[CARD_FIELD]
    if isinstance(card, dict):
        card = {name: value for name, value in card.items() if name != CVV_FIELD}
    return {**body, CARD_FIELD: {"mac": keys.keyed_hash(ctx, CARD_KEY, _canonical(card))}}


def fingerprint(ctx: Context, scope: str, body: Any, target: str | None = None) -> str:
    """The scope, its target and the redacted body as parsed JSON (key order and whitespace do
    not matter), under a keyed MAC (``keys.keyed_hash``): what the key's first request is
    compared with. Keyed, because a body may carry card data (docs/security.md)."""
    message = b"\0".join((scope.encode(), (target or "").encode(), _canonical(redacted(ctx, body))))
    return keys.keyed_hash(ctx, FINGERPRINT_KEY, message)


def run(
    ctx: Context,
    merchant_id: str,
    scope: str,
    key: str | None,
    body: Any,
    create: Callable[[Token | None], dict[str, Any]],
    *,
    target: str | None = None,
) -> Answer:
    """Create once per (merchant, key): ``create(token)`` returns the new object's view and
    passes ``token`` to its creating statement (``token_params``). Without a key it simply
    creates. A repeat answers the first response (``replayed``); a different request under the
    same key is a 422, a repeat while the first is in flight a 409; a failure frees the key."""
    if key is None:
        view = create(None)
        return Answer(CREATED, compact_json(view), view=view)
    begun = begin(ctx, str(merchant_id), key, fingerprint(ctx, scope, body, target))
    if isinstance(begun, Answer):
        return begun
    try:
        view = create(begun)
    except BaseException:
        abandon(ctx, begun)
        raise
    return Answer(begun.code, begun.body, view=view)


def begin(ctx: Context, merchant_id: str, key: str, request: str) -> Token | Answer:
    """Claim ``key`` for the request whose fingerprint is ``request`` (Token), or answer what an
    earlier request did with it: its stored response (a replayed Answer), 422 when the
    parameters differ, 409 while it is in flight."""
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidIdempotencyKey(MAX_KEY_LENGTH)
    with ctx.db.connection() as conn:
        existing = repo.claim(conn, merchant_id, key, request)
    if existing is None:
        return Token(merchant_id=merchant_id, key=key)
    if existing["request_hash"] not in (request, LEGACY_FINGERPRINT):
        raise IdempotencyMismatch()
    if existing["status"] != "complete":
        raise Conflict(IDEMPOTENCY_KEY_IN_FLIGHT)
    return Answer(existing["response_code"], bytes(existing["response_body"]), replayed=True)


def abandon(ctx: Context, token: Token) -> None:
    """The request failed before completing: errors are not stored, the key is free again."""
    with ctx.db.connection() as conn:
        repo.release(conn, token.merchant_id, token.key)
