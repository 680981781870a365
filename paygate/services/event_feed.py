"""A merchant's events feed: its events in the log's order (``GET /api/v1/events/feed``), each
with the body and headers a real delivery of it to the merchant's primary webhook endpoint
carries, so ``paygate listen`` can forward it to a laptop signed exactly as the gateway would.

The body is the event's stored envelope, the bytes every delivery of it sends. The headers come
from the notifier that delivers (its ``headers(delivery)``: the built-in ``webhook`` notifier
answers with the very function it signs its POSTs with), for a first attempt made now, with
``webhook-id`` the id a primary delivery of the event uses (the event id) and the secrets a
primary delivery is signed with now (the previous one too during a rotation's overlap).

Cursors are opaque to clients: ``base64url("<txid>.<seq>")`` of the log position the next page
starts after (``paygate.db.events``: reading by ``(txid, seq)`` below the oldest running
transaction skips nothing).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..db import events as repo
from ..db import merchants as merchants_repo
from ..errors import EVENTS_CURSOR_INVALID, BadRequest, NotFound
from ..types import Delivery, Event, Merchant
from . import Context, validation, webhook_secrets
from .views import iso

DEFAULT_LIMIT = 100
MAX_LIMIT = 100
# A cursor is two non-negative 64-bit integers: anything longer is not one of ours.
MAX_CURSOR_LENGTH = 64
_MAX_BIGINT = 2**63 - 1


def encode_cursor(position: repo.LogPosition) -> str:
    text = f"{position.txid}.{position.seq}".encode("ascii")
    return base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")


def decode_cursor(cursor: Any) -> repo.LogPosition:
    """The log position a cursor names; ``BadRequest`` for anything this feed did not hand out
    (wrong type, not base64url, not two integers in range)."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
        raise BadRequest(EVENTS_CURSOR_INVALID, field="after")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        txid_text, seq_text = text.split(".")
        if not (txid_text.isdigit() and seq_text.isdigit()):
            raise ValueError(text)
        txid, seq = int(txid_text), int(seq_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(EVENTS_CURSOR_INVALID, field="after") from None
    if txid > _MAX_BIGINT or seq > _MAX_BIGINT:
        raise BadRequest(EVENTS_CURSOR_INVALID, field="after")
    return repo.LogPosition(txid, seq)


@dataclass(frozen=True)
class FeedEvent:
    """One event as the feed shows it: the event and what a delivery of it carries."""

    event: Event
    headers: dict[str, str]


@dataclass(frozen=True)
class Feed:
    events: list[FeedEvent]
    cursor: str
    has_more: bool


def read(
    ctx: Context,
    merchant: Merchant,
    after: Any = None,
    limit: Any = None,
    clock: Callable[[], float] = time.time,
) -> Feed:
    """The merchant's events after the cursor ``after`` (at most ``limit``, 1-100, default
    100); without ``after``, none, and the cursor of the log's head now (what happens from this
    moment on). ``clock`` stamps the deliveries (``webhook-timestamp``)."""
    lim = _limit(limit)
    if after is None:
        with ctx.db.connection() as conn:
            head = repo.head(conn)
        return Feed([], encode_cursor(head), False)
    position = decode_cursor(after)
    with ctx.db.connection() as conn:
        page = repo.feed_after(conn, merchant.id, position, lim)
        stored = merchants_repo.primary_webhook_secrets(conn, merchant.id) if page.events else None
    if not page.events:
        return Feed([], encode_cursor(page.position), page.has_more)
    if stored is None:
        raise NotFound.of("Merchant")
    sign = _signer(ctx, merchant.id, stored, int(clock()))
    return Feed([sign(event) for event in page.events], encode_cursor(page.position), page.has_more)


def _limit(raw: Any) -> int:
    lim, _ = validation.pagination(raw, None, default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)
    return lim


def _signer(
    ctx: Context, merchant_id: str, stored: dict, timestamp: int
) -> Callable[[Event], FeedEvent]:
    """What builds each event's headers: the notifier's own, with the secrets a primary
    delivery is signed with now (as ``webhooks._attempt`` opens them)."""
    secret, previous = webhook_secrets.for_delivery(
        ctx, merchant_id, stored["webhook_secret"], stored["previous_webhook_secret"]
    )
    describe = getattr(ctx.plugins.notifier(), "headers", None)

    def signed(event: Event) -> FeedEvent:
        if describe is None:  # a notifier that does not say what it sends: the body alone
            return FeedEvent(event, {})
        delivery = Delivery(
            id=event.id,  # a primary delivery's log id (its webhook-id) is the event id
            event=event.type,
            url=stored["webhook_url"] or "",
            body=event.body,
            secret=secret,
            attempt=1,
            timestamp=timestamp,
            timeout=ctx.settings.webhook_timeout_seconds,
            allow_private=ctx.settings.allow_private_webhook_urls,
            previous_secrets=previous,
        )
        return FeedEvent(event, dict(describe(delivery)))

    return signed


def feed_view(feed: Feed) -> dict[str, Any]:
    """The wire form of a page of the feed."""
    return {
        "data": [
            {
                "id": item.event.id,
                "event": item.event.type,
                "created_at": iso(item.event.created_at),
                "webhook": {"headers": item.headers, "body": item.event.body.decode("utf-8")},
            }
            for item in feed.events
        ],
        "cursor": feed.cursor,
        "has_more": feed.has_more,
    }
