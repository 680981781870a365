"""The one abuse limiter: counting windows in PostgreSQL, used by public payment creation, by
dashboard sign-in, by refused processor callbacks and by webhook test sends and manual retries.

Every limit is ``COUNT/SECONDS`` from the settings (``PAYGATE_LIMIT_*``). A request counts one
hit in each of its buckets with a single atomic upsert (``paygate.db.limits``); when any bucket
is over its count the request is refused with ``RateLimited`` (429, ``Retry-After``: the
seconds until the longest exceeded window ends). Buckets are named by a keyed hash of what they
count, so the table holds no client address and no email. Windows start at a bucket's first hit;
with ``max_strikes`` a window that ended over its limit is followed by one twice as long (up to
``2**max_strikes`` times): growing back-off rather than a lock-out.

The client address is the socket peer, unless the peer is one of ``PAYGATE_TRUSTED_PROXIES``:
then it is the right-most hop of ``X-Forwarded-For`` that is not a trusted proxy (the left part
of that header is whatever the client wrote, so it is never believed). IPv6 clients are counted
per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import ipaddress
import random

from ..db import limits as repo
from ..db.limits import Bucket, Count
from ..errors import TOO_MANY_WEBHOOK_SENDS, RateLimited
from . import Context, keys

# One call in this many also forgets windows that ended a day ago (an index range delete).
PRUNE_ONE_IN = 200
MAX_BACKOFF_STRIKES = 4  # sign-in windows grow up to 16 times their base length

PUBLIC_PAYMENT = "pay"
CALLBACK_REFUSED = "callback-refused"
SIGN_IN = "signin"
WEBHOOK_MANUAL = "webhook-manual"


def client_ip(ctx: Context, peer: str | None, forwarded_for: str | None) -> str:
    """The address to count a request against (see the module's docstring)."""
    trusted = ctx.settings.trusted_proxies
    address = _parse(peer)
    if address is None:
        return (peer or "unknown")[:64]
    if not trusted or not _is_trusted(address, trusted):
        return _key_of(address)
    for hop in reversed([h.strip() for h in (forwarded_for or "").split(",") if h.strip()]):
        hop_address = _parse(hop)
        if hop_address is None:  # written by whoever is left of our proxies: stop believing
            return hop[:64]
        if not _is_trusted(hop_address, trusted):
            return _key_of(hop_address)
        address = hop_address
    return _key_of(address)  # every hop is a trusted proxy: the left-most one is the client


def _parse(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address, trusted) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def _key_of(address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def bucket(
    ctx: Context,
    kind: str,
    value: str,
    limit: tuple[int, int],
    *,
    max_strikes: int = 0,
    merchant_id: str | None = None,
) -> Bucket | None:
    """The bucket counting ``value`` for ``kind`` (None when the limit is off: a count of 0)."""
    count, seconds = limit
    if count <= 0:
        return None
    digest = keys.keyed_hash(ctx, "paygate-rate-limits", f"{kind}\0{value}".encode())
    return Bucket(f"{kind}:{digest[:40]}", count, seconds, max_strikes, merchant_id)


def hit(ctx: Context, buckets: list[Bucket | None]) -> list[Count]:
    """Count one hit in every bucket; raise RateLimited when any is over its limit."""
    chosen = list({b.key: b for b in buckets if b is not None}.values())
    with ctx.db.connection() as conn:
        counts = repo.hit(conn, chosen)
        if random.randrange(PRUNE_ONE_IN) == 0:
            repo.prune(conn)
    over = [c for c in counts if c.over]
    if over:
        raise RateLimited(max(c.retry_after for c in over))
    return counts


def forget(ctx: Context, buckets: list[Bucket | None]) -> None:
    """Drop the buckets' windows altogether."""
    keys_ = [b.key for b in buckets if b is not None]
    if keys_:
        with ctx.db.connection() as conn:
            repo.forget(conn, keys_)


def uncount(ctx: Context, buckets: list[Bucket | None]) -> None:
    """Take this request's hit back from each bucket."""
    keys_ = [b.key for b in buckets if b is not None]
    if keys_:
        with ctx.db.connection() as conn:
            repo.uncount(conn, keys_)


# -- the two users ----------------------------------------------------------------------------


def public_payment_attempt(
    ctx: Context, order_id: str, merchant_id: str | None, client: str
) -> None:
    """Count a public (checkout) payment attempt per order, per client and per merchant."""
    settings = ctx.settings
    hit(
        ctx,
        [
            bucket(ctx, f"{PUBLIC_PAYMENT}-order", order_id, settings.limit_public_order),
            bucket(ctx, f"{PUBLIC_PAYMENT}-ip", client, settings.limit_public_ip),
            bucket(
                ctx,
                f"{PUBLIC_PAYMENT}-merchant",
                merchant_id,
                settings.limit_public_merchant,
                merchant_id=merchant_id,
            )
            if merchant_id
            else None,
        ],
    )


def sign_in_buckets(ctx: Context, email: str, client: str) -> list[Bucket | None]:
    """Per client, per account from that client, and per account from anywhere (a distributed
    guess). One attacker can exhaust only its own client's buckets, never lock the owner out;
    only guessing from many clients at once slows the account down for everyone."""
    settings = ctx.settings
    account = email.strip().lower()
    grow = MAX_BACKOFF_STRIKES
    return [
        bucket(ctx, f"{SIGN_IN}-ip", client, settings.limit_sign_in_ip, max_strikes=grow),
        bucket(
            ctx,
            f"{SIGN_IN}-account-ip",
            f"{account}\0{client}",
            settings.limit_sign_in_account_ip,
            max_strikes=grow,
        ),
        bucket(
            ctx, f"{SIGN_IN}-account", account, settings.limit_sign_in_account, max_strikes=grow
        ),
    ]


def callback_refusal(ctx: Context, client: str) -> None:
    """Count a refused processor callback from ``client`` (RateLimited past the limit)."""
    hit(ctx, [bucket(ctx, CALLBACK_REFUSED, client, ctx.settings.limit_callback_refusals)])


def _webhook_manual_bucket(ctx: Context, merchant_id: str) -> Bucket | None:
    limit = ctx.settings.limit_webhook_manual
    return bucket(ctx, WEBHOOK_MANUAL, merchant_id, limit, merchant_id=merchant_id)


def webhook_manual_refused(ctx: Context, merchant_id: str) -> None:
    """Take back a test send's count that was then refused (no URL, endpoint disabled): only
    what makes a delivery counts."""
    uncount(ctx, [_webhook_manual_bucket(ctx, merchant_id)])


def webhook_manual(ctx: Context, merchant_id: str) -> None:
    """Count a webhook test send or manual retry (API or dashboard) of ``merchant_id`` against
    ``PAYGATE_LIMIT_WEBHOOK_MANUAL`` (RateLimited past it): each one makes a delivery, and an
    endpoint that hangs would otherwise take as many as a merchant can ask for. Only requests
    that would make a delivery count (an unknown log, a refused test: not)."""
    limit = ctx.settings.limit_webhook_manual
    try:
        hit(ctx, [_webhook_manual_bucket(ctx, merchant_id)])
    except RateLimited as exc:
        count, window = limit
        message = TOO_MANY_WEBHOOK_SENDS.format(
            count=count, window=f"{window:g}", seconds=exc.retry_after
        )
        raise RateLimited(exc.retry_after, message) from None
