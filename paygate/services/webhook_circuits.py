"""Each webhook endpoint's circuit breaker and concurrency cap.

An endpoint (the merchant's primary ``webhook_url``, endpoint ``primary``, or one of its
``webhook_endpoints``) has a breaker, kept in PostgreSQL (``webhook_circuits``) so every
worker sees the same one and it survives restarts:

- ``closed``: deliveries go, at most ``PAYGATE_WEBHOOK_ENDPOINT_CONCURRENCY`` at once across
  all workers (the deliveries holding a live lease: a dead worker's slot ends with its lease);
- after ``PAYGATE_WEBHOOK_BREAKER_FAILURES`` failed attempts in a row it is ``open`` for
  ``PAYGATE_WEBHOOK_BREAKER_OPEN`` seconds: its due deliveries are put off to the reopen time;
- then the next delivery goes alone, as the probe (``half_open``): success closes the breaker,
  failure opens it again for twice as long as the last time, at most
  ``PAYGATE_WEBHOOK_BREAKER_MAX_OPEN``.

A delivery put off (breaker open, endpoint at its cap, a probe in flight) is not an attempt and
records nothing against it; the job returns at once, holding no thread. It is due again at the
reopen time (open) or after one webhook timeout (busy), and sooner: the end of every attempt
on the endpoint (while closed) brings the next deferred ones forward and enqueues them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..db import webhooks as repo
from . import Context, views

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# admit()'s answers
DELIVER, PROBE, WAIT_OPEN, WAIT_BUSY = "deliver", "probe", "open", "busy"


@dataclass(frozen=True)
class Circuit:
    state: str = CLOSED
    failures: int = 0  # failed attempts in a row
    open_seconds: float | None = None  # the length of the last open period
    retry_at: datetime | None = None  # while open: when the probe may go

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> Circuit:
        if row is None:
            return cls()
        return cls(row["state"], row["failures"], row["open_seconds"], row["retry_at"])

    def stored(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "failures": self.failures,
            "open_seconds": self.open_seconds,
            "retry_at": self.retry_at,
        }


def admit(circuit: Circuit, now: datetime, in_flight: int, cap: int) -> str:
    """What a due delivery does now: ``deliver``; go as the half-open ``probe``; wait for the
    reopen time (``open``); or wait for a slot or the probe's outcome (``busy``)."""
    if circuit.state == CLOSED:
        return DELIVER if in_flight < cap else WAIT_BUSY
    if circuit.state == OPEN and circuit.retry_at is not None and now < circuit.retry_at:
        return WAIT_OPEN
    # Open and due, or half-open: one probe at a time (a dead prober's lease runs out).
    return PROBE if in_flight == 0 else WAIT_BUSY


def after_attempt(
    circuit: Circuit, ok: bool, now: datetime, settings: Settings
) -> tuple[Circuit, str | None]:
    """The breaker after an attempt on its endpoint, and what changed: ``opened``,
    ``reopened`` (a failed probe), ``closed`` (a success while not closed) or None."""
    if ok:
        return Circuit(), (None if circuit.state == CLOSED else "closed")
    failures = circuit.failures + 1
    if circuit.state == HALF_OPEN:
        last = circuit.open_seconds or settings.webhook_breaker_open_seconds
        seconds = min(last * 2, settings.webhook_breaker_max_open_seconds)
        return Circuit(OPEN, failures, seconds, now + timedelta(seconds=seconds)), "reopened"
    if circuit.state == CLOSED and failures >= settings.webhook_breaker_failures:
        seconds = min(
            settings.webhook_breaker_open_seconds, settings.webhook_breaker_max_open_seconds
        )
        return Circuit(OPEN, failures, seconds, now + timedelta(seconds=seconds)), "opened"
    return replace(circuit, failures=failures), None  # a straggler of an open one: stays open


def view(circuit: Circuit, now: datetime) -> dict[str, Any]:
    """``{state, failures, retry_at}`` as the API and dashboard show it: an open breaker whose
    reopen time has passed is ``half_open`` (its next delivery is the probe)."""
    state = circuit.state
    if state == OPEN and (circuit.retry_at is None or circuit.retry_at <= now):
        state = HALF_OPEN
    return {
        "state": state,
        "failures": circuit.failures,
        "retry_at": views.iso(circuit.retry_at) if state == OPEN else None,
    }


def for_merchant(ctx: Context, merchant_id: str) -> dict[str, dict[str, Any]]:
    """The views of the merchant's breakers by endpoint id (``primary`` or the endpoint's id);
    an endpoint that never had a delivery has none (it is closed: ``CLOSED_VIEW``)."""
    with ctx.db.connection() as conn:
        rows, now = repo.circuits_for(conn, merchant_id)
    return {key: view(Circuit.of(row), now) for key, row in rows.items()}


CLOSED_VIEW = {"state": CLOSED, "failures": 0, "retry_at": None}


def gate(conn, settings: Settings, log_id: str) -> str:
    """Admit one due delivery, in the caller's transaction: ``skipped`` (not due, or leased),
    ``deferred`` (put off: breaker open, endpoint at its cap, or a probe in flight), or
    ``deliver`` (the caller claims it in the same transaction)."""
    target = repo.due_target(conn, log_id)
    if target is None:
        return "skipped"
    row = repo.lock_circuit(conn, target["merchant_id"], target["endpoint_id"])
    circuit = Circuit.of(row)
    decision = admit(circuit, row["now"], row["in_flight"], settings.webhook_endpoint_concurrency)
    if decision == WAIT_OPEN:
        repo.defer(conn, log_id, circuit.retry_at)
        return "deferred"
    if decision == WAIT_BUSY:
        # Brought forward when an attempt on the endpoint ends; this is the latest it waits.
        later = row["now"] + timedelta(seconds=settings.webhook_timeout_seconds)
        repo.defer(conn, log_id, later)
        return "deferred"
    if decision == PROBE and circuit.state != HALF_OPEN:
        repo.save_circuit(
            conn,
            target["merchant_id"],
            target["endpoint_id"],
            replace(circuit, state=HALF_OPEN, retry_at=None).stored(),
        )
    return "deliver"


def record(ctx: Context, merchant_id: Any, endpoint_id: Any, url: str, ok: bool) -> list[str]:
    """Count one finished attempt on the endpoint's breaker (logging a line when it opens or
    closes) and, while it is closed, bring its deferred deliveries forward: the ids to
    enqueue."""
    settings = ctx.settings
    with ctx.db.transaction() as conn:
        row = repo.lock_circuit(conn, merchant_id, endpoint_id)
        before = Circuit.of(row)
        after, change = after_attempt(before, ok, row["now"], settings)
        if after != before:
            repo.save_circuit(conn, merchant_id, endpoint_id, after.stored())
        released: list[str] = []
        if after.state == CLOSED:
            # The attempt that ended gave its lease up already: in_flight counts the others.
            room = settings.webhook_endpoint_concurrency - row["in_flight"]
            if room > 0:
                released = repo.release_deferred(conn, merchant_id, endpoint_id, room)
    if change is not None:
        _log_change(change, merchant_id, endpoint_id, url, after, settings)
    return released


def _log_change(
    change: str, merchant_id: Any, endpoint_id: Any, url: str, circuit: Circuit, settings
) -> None:
    host = urlsplit(url).hostname or "?"
    endpoint = repo.endpoint_key(endpoint_id)
    if change == "closed":
        log.info(
            "webhook breaker closed: merchant %s endpoint %s (%s) answered again",
            merchant_id,
            endpoint,
            host,
        )
        return
    log.warning(
        "webhook breaker %s: merchant %s endpoint %s (%s) after %d failed attempts in a row; "
        "deliveries paused until %s (%.0f s)",
        "opened" if change == "opened" else "re-opened (the probe failed)",
        merchant_id,
        endpoint,
        host,
        circuit.failures,
        views.iso(circuit.retry_at),
        circuit.open_seconds or settings.webhook_breaker_open_seconds,
    )
