"""Webhook delivery (worker side): one attempt per job, the retry schedule kept in the database."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..db import webhooks as repo
from ..types import Delivery, DeliveryResult
from . import Context

log = logging.getLogger(__name__)

RESPONSE_BODY_LIMIT = 4096


def next_delay(retry_delays: tuple[int, ...], attempt: int, ok: bool) -> float | None:
    """Seconds until the attempt after ``attempt`` (1-based), or None when there is none."""
    if ok or attempt >= len(retry_delays):
        return None
    return float(retry_delays[attempt])


def deliver(ctx: Context, log_id: str) -> str:
    """Make the next attempt of one delivery if it is due. Safe to run any number of times."""
    with ctx.db.connection() as conn:
        row = repo.claim(conn, log_id, ctx.settings.job_lease_seconds)
        if row is None:
            return "skipped"
        if not row["webhook_url"]:
            repo.abandon_without_url(conn, log_id)
            return "no_url"
    attempt = row["attempts"] + 1
    delivery = Delivery(
        id=str(row["id"]),
        event=row["event"],
        url=row["webhook_url"],
        body=row["body"].encode("utf-8"),
        secret=row["webhook_secret"] or "",
        attempt=attempt,
        timestamp=int(time.time()),
        timeout=ctx.settings.webhook_timeout_seconds,
    )
    started = time.monotonic()
    try:
        result = ctx.plugins.notifier().deliver(delivery)
    except Exception as exc:  # a notifier must not raise; if it does, it is a failed attempt
        log.exception("notifier raised for webhook %s", log_id)
        result = DeliveryResult(ok=False, error=f"notifier error: {exc.__class__.__name__}")
    outcome = _record(ctx, delivery, result, started)
    return outcome["status"] if outcome else "skipped"


def _record(ctx: Context, delivery: Delivery, result: DeliveryResult, started: float) -> Any:
    delay = next_delay(ctx.settings.retry_delays, delivery.attempt, result.ok)
    body = (result.body or "")[:RESPONSE_BODY_LIMIT]
    with ctx.db.connection() as conn:
        return repo.record_attempt(
            conn,
            {
                "id": delivery.id,
                "attempt": delivery.attempt,
                "url": delivery.url,
                "ok": result.ok,
                "response_code": result.status_code,
                "response_body": body.replace("\x00", ""),
                "error": result.error,
                "duration_ms": int((time.monotonic() - started) * 1000),
                "next_delay": delay,
            },
        )
