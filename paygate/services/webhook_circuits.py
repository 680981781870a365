"""Each webhook endpoint's circuit breaker and concurrency cap.

An endpoint (the merchant's primary ``webhook_url``, endpoint ``primary``, or one of its
``webhook_endpoints``) has a breaker, kept in PostgreSQL (``webhook_circuits``) so every
worker sees the same one and it survives restarts:

- ``closed``: deliveries go, at most ``PAYGATE_WEBHOOK_ENDPOINT_CONCURRENCY`` at once across
  all workers (the breaker's ``slots``, each ending with its delivery's lease: a dead worker's
  slot ends with its lease);
- after ``PAYGATE_WEBHOOK_BREAKER_FAILURES`` failed attempts in a row it is ``open`` for
  ``PAYGATE_WEBHOOK_BREAKER_OPEN`` seconds: its due deliveries are put off to the reopen time;
- then the next delivery goes alone, as the probe (``half_open``): success closes the breaker,
  failure opens it again for twice as long as the last time, at most
  ``PAYGATE_WEBHOOK_BREAKER_MAX_OPEN``.

A delivery put off (breaker open, endpoint at its cap, a probe in flight) is not an attempt and
records nothing against it; the job returns at once, holding no thread. It is due again at the
reopen time (open) or after one webhook timeout (busy), and sooner: the end of every attempt
on the endpoint (while closed) brings the next deferred ones forward and enqueues them.

No lock is held between statements (a worker stopped or killed between two holds nothing up):
each change to a breaker is one ``UPDATE`` that applies only to the version it read.
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


# Each change to a breaker is one statement that applies only to the version it read; when
# another worker changed it meanwhile the change is read and worked out again.
MAX_TRIES = 50


def _live(slots: list[str], now: datetime, leaving: str | None = None) -> list[str]:
    """The slots whose lease has not ended (without ``leaving``'s, the delivery that ends)."""
    moment = now.timestamp()
    return [
        slot
        for slot in slots
        if float(slot.rpartition("|")[2]) > moment and slot.partition("|")[0] != leaving
    ]


def gate(conn, settings: Settings, row: dict[str, Any]) -> tuple[str, datetime | None]:
    """Admit a claimed delivery (``row``: the claim, with its lease ``locked_until``):
    ``("deliver", None)`` (it took a slot, or goes as the probe), or ``("deferred", until)``
    (breaker open, endpoint at its cap, or a probe in flight: the caller gives it back)."""
    merchant_id, endpoint_id = row["merchant_id"], row["endpoint_id"]
    slot = f"{row['id']}|{row['locked_until'].timestamp()}"
    cap = settings.webhook_endpoint_concurrency
    for _ in range(MAX_TRIES):
        stored = repo.read_circuit(conn, merchant_id, endpoint_id)
        circuit, now = Circuit.of(stored), stored["now"]
        live = _live(stored["slots"], now, leaving=str(row["id"]))
        decision = admit(circuit, now, len(live), cap)
        if decision == WAIT_OPEN:
            return "deferred", circuit.retry_at
        if decision == WAIT_BUSY:
            # Brought forward when an attempt on the endpoint ends; this is the latest it waits.
            return "deferred", now + timedelta(seconds=settings.webhook_timeout_seconds)
        if decision == PROBE:
            circuit = replace(circuit, state=HALF_OPEN, retry_at=None)
        if repo.write_circuit(
            conn, merchant_id, endpoint_id, stored["version"], circuit.stored(), [*live, slot]
        ):
            return "deliver", None
    raise RuntimeError(f"webhook circuit of {merchant_id}/{endpoint_id} kept changing")


def recheck(conn, settings: Settings, row: dict[str, Any]) -> list[str]:
    """After giving a delivery back for a lack of room: if room appeared meanwhile (an attempt
    ended between the admission and the give-back, and its release found nothing deferred
    yet), bring the endpoint's deferred deliveries forward now; the ids to enqueue. Either the
    ending attempt sees the deferred row or this sees its freed slot: none waits for nothing."""
    stored = repo.read_circuit(conn, row["merchant_id"], row["endpoint_id"])
    live = _live(stored["slots"], stored["now"])
    room = settings.webhook_endpoint_concurrency - len(live)
    if stored["state"] != CLOSED or room <= 0:
        return []
    return repo.release_deferred(conn, row["merchant_id"], row["endpoint_id"], room)


def record(ctx: Context, row: dict[str, Any], url: str, ok: bool | None) -> list[str]:
    """An attempt on the endpoint ended: give its slot back, count it on the breaker (``ok``
    None: not the endpoint's doing, counted neither way), logging a line when the breaker
    opens or closes, and, while it is closed, bring its deferred deliveries forward: the ids to
    enqueue."""
    settings = ctx.settings
    merchant_id, endpoint_id = row["merchant_id"], row["endpoint_id"]
    with ctx.db.connection() as conn:
        for _ in range(MAX_TRIES):
            stored = repo.read_circuit(conn, merchant_id, endpoint_id)
            before, now = Circuit.of(stored), stored["now"]
            live = _live(stored["slots"], now, leaving=str(row["id"]))
            after, change = (
                (before, None) if ok is None else after_attempt(before, ok, now, settings)
            )
            if repo.write_circuit(
                conn, merchant_id, endpoint_id, stored["version"], after.stored(), live
            ):
                break
        else:
            raise RuntimeError(f"webhook circuit of {merchant_id}/{endpoint_id} kept changing")
        released: list[str] = []
        room = settings.webhook_endpoint_concurrency - len(live)
        if after.state == CLOSED and room > 0:
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
