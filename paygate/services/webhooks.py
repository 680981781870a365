"""Webhooks: delivery attempts on the retry schedule, logs, manual retry, configuration, tests.

Delivery (worker side) makes one attempt per job: claim the due row, hand the stored bytes to
the notifier plugin, record the outcome and the next due time in one statement. The schedule
lives in ``webhook_logs.next_retry_at``; the janitor dispatches rows when they fall due, so a
scheduled retry survives a worker kill or a Redis wipe.

The merchant side (API and dashboard call these, with a ``Merchant``): ``list_logs``,
``detail``, ``retry``, ``get_config``, ``update_config``, ``send_test``; they return domain
types (``WebhookLog``, ``Merchant``), and the callers build what they show.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from .. import metrics
from ..db import merchants as merchants_repo
from ..db import webhooks as repo
from ..db.outbox import event_params
from ..errors import (
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    ENDPOINT_TEST_SCHEDULED,
    FIELD_NOT_STRING,
    NO_WEBHOOK_URL,
    REGENERATE_SECRET_NOT_BOOLEAN,
    WEBHOOK_CONFIG_EMPTY,
    WEBHOOK_TEST_MESSAGE,
    WEBHOOK_TEST_SCHEDULED,
    WEBHOOK_URL_NOT_CONFIGURED,
    WEBHOOK_URL_REFUSED,
    BadRequest,
    NotFound,
    SecretUnreadable,
)
from ..events import WEBHOOK_TEST, envelope
from ..netpolicy import webhook_url_problem
from ..types import Delivery, DeliveryResult, Listing, Merchant, WebhookLog
from . import Context, limits, merchants, validation, webhook_circuits, webhook_secrets
from .lookup import found

log = logging.getLogger(__name__)

RESPONSE_BODY_LIMIT = 4096
# Why a delivery ended unsent, by its endpoint's state (None: the primary URL was removed).
_NOT_SENT = {
    None: NO_WEBHOOK_URL,
    "disabled": ENDPOINT_DISABLED,
    "deleted": ENDPOINT_DELETED,
    "enabled": ENDPOINT_DISABLED,
}


def next_delay(retry_delays: tuple[int, ...], attempt: int, ok: bool) -> float | None:
    """Seconds until the attempt after ``attempt`` (1-based), or None when there is none."""
    if ok or attempt >= len(retry_delays):
        return None
    return float(retry_delays[attempt])


# -- worker side ------------------------------------------------------------------------------


def _attempt_bound(ctx: Context) -> float:
    # What one attempt can take, with room to record it: a notifier bounds its connect and its
    # read by the timeout each (the built-in one the whole attempt).
    return ctx.settings.webhook_timeout_seconds * 2 + 5


def _lease_seconds(ctx: Context) -> float:
    # The lease outlives the longest attempt, so no second worker can start the same one.
    return max(ctx.settings.job_lease_seconds, _attempt_bound(ctx))


def _batch_lease_seconds(ctx: Context) -> float:
    # Room for two whole attempts at least: the first, and as many after it as take no more
    # than one attempt's bound together (with the defaults, the job lease itself: 30 s).
    return max(ctx.settings.job_lease_seconds, 2 * _attempt_bound(ctx))


def deliver(ctx: Context, log_id: str) -> str:
    """Make the next attempt of one delivery if it is due. Safe to run any number of times.

    Returns ``skipped`` (not due, done, or another worker has it), ``deferred`` (put off by
    its endpoint's breaker or concurrency cap: not an attempt, see ``webhook_circuits``),
    ``no_url``, or the log's status after the attempt: ``success``, ``pending`` (a retry is
    scheduled) or ``failed``.
    """
    lease = _lease_seconds(ctx)
    with ctx.db.connection() as conn:
        row = repo.claim(conn, log_id, lease)  # with its endpoint's breaker
    if row is None:
        return "skipped"
    return _deliver_claimed(ctx, row, lease)


def deliver_batch(ctx: Context, log_ids: list[str]) -> list[str]:
    """``deliver`` for several deliveries, one after the other in the order given (a payment's
    ``payment.created`` then ``payment.pending``; the deliveries one webhook thread took from
    a backlog together), in two statements: one claims them all, one records every attempt
    when the batch ends. The outcome of each id, in the order given.

    The claim's lease has room for the batch (``_batch_lease_seconds``): an attempt starts only
    while a whole attempt (``_attempt_bound``) still fits in it; when one would not (slow
    endpoints), the rest is given back unattempted, due at once and enqueued again
    (``deferred``). A worker killed in a batch leaves its attempts unrecorded: they are made
    again when the lease runs out (the merchant sees the same ``webhook-id`` twice, as after
    any answer that was not recorded)."""
    ids = list(dict.fromkeys(str(log_id) for log_id in log_ids))  # each once, in order
    lease, bound = _lease_seconds(ctx), _attempt_bound(ctx)
    with ctx.db.connection() as conn:
        rows = repo.claim_many(conn, ids, _batch_lease_seconds(ctx))
    claimed_at = time.monotonic()
    outcomes = {log_id: "skipped" for log_id in ids if log_id not in rows}
    attempts: list[dict[str, Any]] = []
    try:
        for position, log_id in enumerate(ids):
            row = rows.get(log_id)
            if row is None:
                continue
            held = (row["locked_until"] - row["now"]).total_seconds()
            if held - (time.monotonic() - claimed_at) < bound:
                rest = [i for i in ids[position:] if i in rows]
                with ctx.db.connection() as conn:
                    ctx.dispatcher.webhooks(repo.give_back(conn, rest, row["locked_until"]))
                outcomes.update(dict.fromkeys(rest, "deferred"))
                break
            outcomes[log_id] = _deliver_claimed(ctx, row, lease, attempts)
    finally:
        if attempts:
            with ctx.db.connection() as conn:
                recorded = repo.record_attempts(conn, attempts)
            for attempt in attempts:  # not recorded: the lease was lost meanwhile
                row = recorded.get(attempt["id"])
                outcomes[attempt["id"]] = row["status"] if row is not None else "skipped"
    return [outcomes[str(log_id)] for log_id in log_ids]


def _deliver_claimed(
    ctx: Context, row: dict[str, Any], lease: float, later: list | None = None
) -> str:
    """The attempt of a delivery this worker has just claimed (``row``), recorded at once, or
    with ``later`` appended there for the caller to record (the outcome then is ``attempted``).
    Without an attempt: ``no_url`` or ``deferred``."""
    log_id = str(row["id"])
    if not row["webhook_url"]:
        # The primary URL was removed, or the endpoint disabled or deleted, since the
        # event was written: the delivery ends here, unsent.
        reason = _NOT_SENT.get(row["endpoint_state"], _NOT_SENT[None])
        with ctx.db.connection() as conn:
            repo.abandon_without_url(conn, log_id, row["locked_until"], reason)
        return "no_url"
    # Takes one of the endpoint's slots in this process (waiting briefly, off any connection).
    admitted, until = webhook_circuits.gate(ctx, row, lease)
    if admitted != webhook_circuits.DELIVER:  # not an attempt: given back, due at ``until``
        with ctx.db.connection() as conn:
            repo.unclaim_and_defer(conn, log_id, row["locked_until"], until)
        if admitted == webhook_circuits.NO_SLOT:
            released = webhook_circuits.deferred_for_want_of_a_slot(ctx, row)
            if released:
                ctx.dispatcher.webhooks(released)
        return "deferred"
    try:
        attempt, ok = _attempt(ctx, row)
        if later is None:
            with ctx.db.connection() as conn:
                recorded = repo.record_attempt(conn, attempt)
        else:
            later.append(attempt)
    except BaseException:
        webhook_circuits.record(ctx, row, row["webhook_url"], None)  # the slot goes back
        raise
    # The slot goes back; the outcome counts on the breaker (``ok`` None: not the endpoint's
    # doing). Deliveries this put forward are enqueued.
    released = webhook_circuits.record(ctx, row, row["webhook_url"], ok)
    if released:
        ctx.dispatcher.webhooks(released)
    if later is not None:
        return "attempted"
    if recorded is None:
        return "skipped"  # the lease was lost meanwhile (a manual retry reset the row)
    return recorded["status"]


def _attempt(ctx: Context, row: dict[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """One attempt of a claimed, admitted delivery: its record (``repo.record_attempt``'s
    parameters), and whether the endpoint took it (None: an unreadable secret, ours to fix,
    not the endpoint's failure)."""
    settings = ctx.settings
    started = time.monotonic()
    try:
        # The current secret and, during a rotation's overlap, the previous one (the claim
        # returns it only until its window ends): a retry is signed with what is valid now.
        # Sealed for the merchant (primary) or for the endpoint: ``secret_owner`` says which.
        secret, previous = webhook_secrets.for_delivery(
            ctx, str(row["secret_owner"]), row["webhook_secret"], row["previous_webhook_secret"]
        )
    except SecretUnreadable:  # never sent unsigned or signed with a wrong key: a failed attempt
        secret, previous, unreadable = "", (), True
    else:
        unreadable = False
    delivery = Delivery(
        id=str(row["id"]),
        event=row["event"],
        url=row["webhook_url"],
        body=row["body"].encode("utf-8"),
        secret=secret,
        attempt=row["attempts"] + 1,
        timestamp=int(time.time()),
        timeout=settings.webhook_timeout_seconds,
        allow_private=settings.allow_private_webhook_urls,
        previous_secrets=previous,
    )
    if unreadable:
        result = DeliveryResult(ok=False, error="webhook secret cannot be decrypted")
    else:
        try:
            result = ctx.plugins.notifier().deliver(delivery)
        except Exception as exc:  # a notifier must not raise; if it does, it is a failed attempt
            log.exception("notifier raised for webhook %s", delivery.id)
            result = DeliveryResult(ok=False, error=f"notifier error: {exc.__class__.__name__}")
    elapsed = time.monotonic() - started
    metrics.WEBHOOK_DELIVERY_SECONDS.labels("ok" if result.ok else "error").observe(elapsed)
    attempt = {
        "id": delivery.id,
        "lease": row["locked_until"],
        "attempt": delivery.attempt,
        "url": delivery.url,
        "ok": result.ok,
        "response_code": result.status_code,
        "response_body": (result.body or "")[:RESPONSE_BODY_LIMIT].replace("\x00", ""),
        "error": (result.error or "")[:500] or None,
        "duration_ms": int(elapsed * 1000),
        "next_delay": next_delay(settings.retry_delays, delivery.attempt, result.ok),
    }
    return attempt, (None if unreadable else result.ok)


# -- merchant side ----------------------------------------------------------------------------


def _log_id(raw: Any) -> str:
    """A webhook log id, or the contract's 404 (a malformed id names no log)."""
    try:
        return str(uuid.UUID(str(raw)))
    except (ValueError, TypeError):
        raise NotFound.of("Webhook log") from None


def list_logs(
    ctx: Context, merchant: Merchant, limit: Any = None, offset: Any = None
) -> Listing[WebhookLog]:
    """A page of the merchant's own logs, newest first (without payloads)."""
    lim, off = validation.pagination(limit, offset)
    with ctx.db.connection() as conn:
        items, total = repo.list_for_merchant(conn, merchant.id, limit=lim, offset=off)
    return Listing(items, total, lim, off)


def detail(ctx: Context, merchant: Merchant, log_id: str) -> WebhookLog:
    """One log with its payload (as sent), last response body and every attempt."""
    log_id = _log_id(log_id)
    with ctx.db.connection() as conn:
        return found(repo.get(conn, log_id, merchant.id), "Webhook log")


_NOT_RETRIED = {
    None: WEBHOOK_URL_NOT_CONFIGURED,
    "disabled": ENDPOINT_DISABLED,
    "deleted": ENDPOINT_DELETED,
}


def retry(ctx: Context, merchant: Merchant, log_id: str) -> str:
    """Deliver a log again from attempt 1, now, to where it went (the primary URL or its
    endpoint): the stored body, signed with that target's current secret (and the previous one
    during a rotation's overlap). An open breaker on that endpoint lets it go now as its probe.
    Past ``PAYGATE_LIMIT_WEBHOOK_MANUAL`` (tests and retries together): ``RateLimited``.
    Returns the log's id."""
    log_id = _log_id(log_id)
    with ctx.db.connection() as conn:
        target = found(repo.target_of(conn, log_id, merchant.id), "Webhook log")
    if not target["url"]:  # the primary has no URL, or the endpoint is disabled or deleted
        raise BadRequest(_NOT_RETRIED[target["endpoint_state"]])
    limits.webhook_manual(ctx, merchant.id)  # only a retry that delivers counts
    with ctx.db.connection() as conn:
        found(repo.reset_for_retry(conn, log_id, merchant.id), "Webhook log")
        # Asked for by the merchant (its endpoint fixed, say): an open breaker probes with it.
        repo.probe_now(conn, merchant.id, target["endpoint_id"])
    ctx.dispatcher.webhooks([log_id])
    return log_id


def get_config(ctx: Context, merchant: Merchant) -> Merchant:
    """The merchant as stored now (not as cached at sign-in), its ``webhook_secret`` opened:
    its ``webhook_url`` and ``webhook_secret``."""
    return merchants.get(ctx, merchant.id)


def update_config(ctx: Context, merchant: Merchant, body: Any) -> Merchant:
    """Set or clear ``webhook_url`` (empty or null clears it), and/or rotate the secret with
    ``regenerate_secret: true``. A merchant without a secret gets one with its first URL.
    A rotation keeps the replaced secret signing, next to the new one, for the overlap window
    (``PAYGATE_WEBHOOK_SECRET_OVERLAP``). Secrets are stored sealed. Returns the merchant as
    updated, its secret opened."""
    body = validation.require_object(body)
    validation.reject_unknown(body, {"webhook_url", "regenerate_secret"})
    if "webhook_url" not in body and "regenerate_secret" not in body:
        raise BadRequest(WEBHOOK_CONFIG_EMPTY)
    regenerate = body.get("regenerate_secret", False)
    if not isinstance(regenerate, bool):
        raise BadRequest(REGENERATE_SECRET_NOT_BOOLEAN, field="regenerate_secret")
    set_url = "webhook_url" in body
    url = _webhook_url(ctx, body["webhook_url"]) if set_url else None
    # Not opened: a merchant whose secret no longer decrypts must still be able to rotate it.
    current = merchants.record(ctx, merchant.id)
    has_secret = bool(current.webhook_secret or current.webhook_secret_sealed)
    first = None
    if set_url and url and not has_secret and not regenerate:
        first = webhook_secrets.seal(ctx, current.id, merchants.new_webhook_secret())
    rotation = _rotation(ctx, current) if regenerate else None
    with ctx.db.transaction() as conn:
        updated = current
        if set_url:
            updated = merchants_repo.update_webhook(conn, current.id, url=url, secret=first)
        if rotation is not None:
            updated = merchants_repo.rotate_webhook_secret(conn, current.id, *rotation)
    updated = found(updated, "Merchant")
    merchants.forget_cached(merchant_id=updated.id)
    return webhook_secrets.reveal(ctx, updated)


def previous_secret_until(merchant: Merchant) -> datetime | None:
    """When the secret replaced by the last rotation stops signing; None when it no longer
    does (or there was none)."""
    until = merchant.previous_webhook_secret_until
    return until if until is not None and until > datetime.now(UTC) else None


def _rotation(ctx: Context, current: Merchant) -> tuple[str, str | None, float]:
    """A new sealed secret, the one it replaces (sealed; None when there is none or it no
    longer decrypts, so nothing unreadable keeps signing) and the overlap in seconds."""
    new = webhook_secrets.seal(ctx, current.id, merchants.new_webhook_secret())
    previous = webhook_secrets.sealed_current(ctx, current)
    if previous is not None:
        try:
            webhook_secrets.open_stored(ctx, current.id, previous)
        except SecretUnreadable:
            previous = None
    return new, previous, ctx.settings.webhook_secret_overlap_seconds


def _webhook_url(ctx: Context, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(FIELD_NOT_STRING.format(field="webhook_url"), field="webhook_url")
    url = value.strip()
    if not url:
        return None
    problem = webhook_url_problem(url, allow_private=ctx.settings.allow_private_webhook_urls)
    if problem:
        raise BadRequest(WEBHOOK_URL_REFUSED.format(problem=problem), field="webhook_url")
    return url


def webhook_test_payload(merchant_id: str, now: float | None = None) -> dict[str, Any]:
    data = {"message": WEBHOOK_TEST_MESSAGE, "merchant_id": merchant_id}
    return envelope(WEBHOOK_TEST, data, now)


def send_test(ctx: Context, merchant: Merchant) -> dict[str, Any]:
    """Write a ``webhook.test`` event for the primary URL only (an endpoint has its own test,
    ``webhook_endpoints.send_test``) and dispatch it like any other (202). Without a primary URL:
    400, and nothing is written (not even the event)."""
    return schedule_test(ctx, merchant.id, None, WEBHOOK_URL_NOT_CONFIGURED)


def schedule_test(
    ctx: Context, merchant_id: str, endpoint_id: str | None, refusal: str
) -> dict[str, Any]:
    """Write one ``webhook.test`` for one target (the primary URL when ``endpoint_id`` is None;
    one statement, which writes nothing when the target cannot receive it: then
    ``BadRequest(refusal)``) and dispatch it. The 202 answer. Past
    ``PAYGATE_LIMIT_WEBHOOK_MANUAL`` (tests and retries together): ``RateLimited``."""
    limits.webhook_manual(ctx, merchant_id)
    params = event_params(merchant_id, None, [webhook_test_payload(merchant_id)])
    with ctx.db.connection() as conn:
        ids = repo.insert_test_event(conn, params, endpoint_id)
        if ids:  # a test is how a merchant checks its endpoint: an open breaker probes with it
            repo.probe_now(conn, merchant_id, endpoint_id)
    if not ids:
        limits.webhook_manual_refused(ctx, merchant_id)  # nothing sent: not counted
        raise BadRequest(refusal)
    ctx.dispatcher.webhooks(ids)
    answer = {"id": str(ids[0]), "event": WEBHOOK_TEST, "status": "pending"}
    if endpoint_id is not None:
        answer["endpoint_id"] = endpoint_id
    answer["message"] = WEBHOOK_TEST_SCHEDULED if endpoint_id is None else ENDPOINT_TEST_SCHEDULED
    return answer
