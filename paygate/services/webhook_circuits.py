"""Each webhook endpoint's circuit breaker and concurrency cap.

An endpoint (the merchant's primary ``webhook_url``, endpoint ``primary``, or one of its
``webhook_endpoints``) has a breaker, kept in PostgreSQL (``webhook_circuits``) so every
worker sees the same one and it survives restarts:

- ``closed``: deliveries go;
- after ``PAYGATE_WEBHOOK_BREAKER_FAILURES`` failed attempts in a row it is ``open`` for
  ``PAYGATE_WEBHOOK_BREAKER_OPEN`` seconds: its due deliveries are put off to the reopen time;
- then the next delivery goes alone, as the probe (``half_open``, until the probe's lease ends:
  a dead prober's probe ends then): success closes the breaker, failure opens it again for
  twice as long as the last time, at most ``PAYGATE_WEBHOOK_BREAKER_MAX_OPEN``.

The happy path costs nothing here: the claim returns the breaker with the delivery (no row:
closed, never failed), and the row is written only when something changes (a failed attempt,
a success after failures, the probe taken); a success on a closed, never-failed endpoint
writes nothing. Each write is one statement that applies only to the version it read (no lock
held between statements); one that lost to another worker's reads the breaker and works the
change out again.

The cap, ``PAYGATE_WEBHOOK_ENDPOINT_CONCURRENCY``, is per worker process, in memory: a
semaphore per endpoint (``Slots``). A delivery waits for one at most ``SLOT_WAIT`` seconds
(a healthy endpoint frees one within milliseconds); past that it is given back without an
attempt, due again after ``BUSY_DEFER`` seconds, and the process remembers that the endpoint
has deferred deliveries: the end of the next attempt on it brings them forward (on the plain
happy path nothing is looked for). A killed worker's semaphores die with it. An endpoint thus
holds at most ``cap`` of each worker's ``PAYGATE_WEBHOOK_CONCURRENCY`` threads: the others
always have the rest, and the breaker stops a failing endpoint after a few failures.

A delivery put off (breaker open, probe in flight, no slot) is not an attempt and records
nothing against it; the job returns, holding no thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .. import metrics
from ..config import Settings
from ..db import webhooks as repo
from . import Context, views

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# admit()'s answers (gate() answers DELIVER, WAIT_OPEN, WAIT_PROBE or NO_SLOT)
DELIVER, PROBE, WAIT_OPEN, WAIT_PROBE = "deliver", "probe", "open", "probing"
NO_SLOT = "no_slot"
# How long a delivery waits for one of its endpoint's slots in this process, and how long one
# that got none is put off (sooner when an attempt on the endpoint ends).
SLOT_WAIT = 0.25
BUSY_DEFER = 1.0


@dataclass(frozen=True)
class Circuit:
    state: str = CLOSED
    failures: int = 0  # failed attempts in a row
    open_seconds: float | None = None  # the length of the last open period
    retry_at: datetime | None = None  # open: when the probe may go; half-open: its lease's end

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> Circuit:
        if row is None:
            return cls()
        return cls(row["state"], row["failures"], row["open_seconds"], row["retry_at"])

    @classmethod
    def claimed(cls, row: dict[str, Any]) -> Circuit:
        """The breaker the claim returned with the delivery (closed when it has no row)."""
        if row["circuit_state"] is None:
            return cls()
        return cls(
            row["circuit_state"],
            row["circuit_failures"],
            row["circuit_open_seconds"],
            row["circuit_retry_at"],
        )

    def stored(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "failures": self.failures,
            "open_seconds": self.open_seconds,
            "retry_at": self.retry_at,
        }


def admit(circuit: Circuit, now: datetime) -> str:
    """What a due delivery does by its endpoint's breaker: ``deliver``; go as the half-open
    ``probe``; wait for the reopen time (``open``); or wait for the probe in flight to end
    (``probing``)."""
    if circuit.state == CLOSED:
        return DELIVER
    if circuit.retry_at is not None and now < circuit.retry_at:
        return WAIT_OPEN if circuit.state == OPEN else WAIT_PROBE
    # Open and due, or half-open past the probe's lease (the prober died): one probe goes.
    return PROBE


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


# -- the cap: each worker process's slots per endpoint ----------------------------------------


class Slots:
    """``cap`` slots per endpoint in this process (a ``BoundedSemaphore`` each, kept only
    while some thread holds or waits for one), and which endpoints have deliveries this
    process put off for want of one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[tuple, _Entry] = {}
        self._deferred: set[tuple] = set()

    def acquire(self, key: tuple, cap: int, timeout: float) -> float | None:
        """Take one of the endpoint's slots, waiting at most ``timeout`` seconds, and not at all
        when the endpoint is slow (its oldest attempt in flight has run longer than
        ``timeout``: a healthy endpoint answers within milliseconds, and a thread waiting on a
        slow one would hold up the deliveries queued behind it). The slot's token (give it to
        ``release``), or None."""
        now = time.monotonic()
        with self._lock:
            entry = self._slots.get(key)
            if entry is None:
                entry = self._slots[key] = _Entry(threading.BoundedSemaphore(cap), cap)
            if entry.slow(now, timeout):
                timeout = 0
            entry.users += 1
        if entry.semaphore.acquire(timeout=timeout):
            token = time.monotonic()
            with self._lock:
                entry.started.append(token)
            return token
        self._leave(key, entry)
        return None

    def release(self, key: tuple, token: float) -> int:
        """Give a slot back; how many of the endpoint's slots are free now."""
        with self._lock:
            entry = self._slots[key]
            entry.started.remove(token)
            free = entry.cap - len(entry.started)
        entry.semaphore.release()
        self._leave(key, entry)
        return free

    def free(self, key: tuple, cap: int) -> int:
        with self._lock:
            entry = self._slots.get(key)
            return cap if entry is None else entry.cap - len(entry.started)

    def slow(self, key: tuple, after: float) -> bool:
        """Whether the endpoint's oldest attempt in flight here has run longer than ``after``."""
        with self._lock:
            entry = self._slots.get(key)
            return entry is not None and entry.slow(time.monotonic(), after)

    def _leave(self, key: tuple, entry: _Entry) -> None:
        with self._lock:
            entry.users -= 1
            if entry.users == 0 and self._slots.get(key) is entry:
                del self._slots[key]

    def mark_deferred(self, key: tuple) -> None:
        with self._lock:
            self._deferred.add(key)

    def take_deferred(self, key: tuple) -> bool:
        """Whether the endpoint had deliveries put off here, forgetting it (the caller brings
        them forward, and marks it again if some may be left)."""
        with self._lock:
            if key in self._deferred:
                self._deferred.discard(key)
                return True
            return False


@dataclass
class _Entry:
    semaphore: threading.BoundedSemaphore
    cap: int
    users: int = 0  # threads holding or waiting for a slot
    started: list[float] = field(default_factory=list)  # when each held slot was taken

    def slow(self, now: float, after: float) -> bool:
        """Whether the oldest attempt in flight has run longer than ``after`` seconds."""
        return bool(self.started) and now - min(self.started) > after


SLOTS = Slots()


def slot_key(settings: Settings, row: dict[str, Any]) -> tuple:
    return (
        str(row["merchant_id"]),
        repo.endpoint_key(row["endpoint_id"]),
        settings.webhook_endpoint_concurrency,
    )


# -- admission and the end of an attempt --------------------------------------------------------

# A breaker write that lost to another worker's is worked out again from what is stored now.
MAX_TRIES = 50


def gate(ctx: Context, row: dict[str, Any], lease: float) -> tuple[str, datetime | None]:
    """Admit a claimed delivery (``row``: the claim, with its breaker). ``("deliver", None)``:
    it holds one of its endpoint's slots in this process (``record`` gives it back) and, if its
    breaker was open, goes as the probe (``row``'s breaker then is the half-open one written).
    Else the caller gives it back without an attempt, due again at the time given: ``open``
    (breaker open), ``probing`` (a probe in flight, or another worker took it) or ``no_slot``
    (none free in this process within ``SLOT_WAIT``)."""
    settings = ctx.settings
    circuit, now = Circuit.claimed(row), row["now"]
    decision = admit(circuit, now)
    if decision in (WAIT_OPEN, WAIT_PROBE):
        return decision, circuit.retry_at
    soon = now + timedelta(seconds=SLOT_WAIT + BUSY_DEFER)
    key = slot_key(settings, row)
    token = SLOTS.acquire(key, settings.webhook_endpoint_concurrency, SLOT_WAIT)
    if token is None:
        if SLOTS.slow(key, SLOT_WAIT):
            # Its attempts take long (hanging or timing out): no use coming back every second;
            # the end of one of them brings this forward (at the latest, one webhook timeout).
            return NO_SLOT, now + timedelta(seconds=settings.webhook_timeout_seconds)
        return NO_SLOT, soon
    if decision == PROBE:
        # Exactly one worker takes the probe: the write applies only to the version claimed.
        # Its retry_at is the probe's lease end: a dead prober's probe ends then.
        with ctx.db.connection() as conn:
            won = repo.write_circuit(
                conn,
                row["merchant_id"],
                row["endpoint_id"],
                row["circuit_version"],
                replace(circuit, state=HALF_OPEN).stored(),
                lease,
            )
        if won is None:
            SLOTS.release(key, token)
            return WAIT_PROBE, soon
        row.update(
            circuit_state=HALF_OPEN,
            circuit_retry_at=won["retry_at"],
            circuit_version=won["version"],
        )
    row["slot"] = token
    return DELIVER, None


def deferred_for_want_of_a_slot(ctx: Context, row: dict[str, Any]) -> list[str]:
    """After giving a delivery back for want of a slot: remember that the endpoint has deferred
    deliveries (the end of an attempt on it brings them forward), and if a slot was freed
    meanwhile (an attempt ended between the wait and the mark), bring them forward now: the ids
    to enqueue. Either that ending attempt sees the mark or this sees its free slot: none
    waits for nothing."""
    key = slot_key(ctx.settings, row)
    SLOTS.mark_deferred(key)
    free = SLOTS.free(key, ctx.settings.webhook_endpoint_concurrency)
    if free <= 0 or not SLOTS.take_deferred(key):
        return []
    return _release(ctx, row, key, free)


def _release(ctx: Context, row: dict[str, Any], key: tuple, limit: int) -> list[str]:
    with ctx.db.connection() as conn:
        released = repo.release_deferred(conn, row["merchant_id"], row["endpoint_id"], limit)
    if len(released) == limit:
        SLOTS.mark_deferred(key)  # there may be more: the next attempt's end looks again
    return released


def record(ctx: Context, row: dict[str, Any], url: str, ok: bool | None) -> list[str]:
    """An attempt on the endpoint ended: give its slot back, count it on the breaker (``ok``
    None: not the endpoint's doing, counted neither way; written only when it changes),
    logging a line when the breaker opens or closes, and bring deferred deliveries forward
    when this process put some off or the breaker just closed: the ids to enqueue."""
    settings = ctx.settings
    key = slot_key(settings, row)
    free = SLOTS.release(key, row["slot"])
    after, change = (Circuit.claimed(row), None) if ok is None else _count(ctx, row, ok)
    released: list[str] = []
    if after.state == CLOSED and (SLOTS.take_deferred(key) or change == "closed"):
        # Closed: those put off while it was open or probing come back now too.
        limit = settings.webhook_endpoint_concurrency if change == "closed" else free
        released = _release(ctx, row, key, max(limit, 1))
    if change is not None:
        metrics.WEBHOOK_CIRCUIT_TRANSITIONS.labels(change).inc()
        _log_change(change, row["merchant_id"], row["endpoint_id"], url, after, settings)
    return released


def _count(ctx: Context, row: dict[str, Any], ok: bool) -> tuple[Circuit, str | None]:
    """Count an attempt's outcome on its endpoint's breaker: the breaker after it, and what
    changed. Starts from the breaker the claim read; nothing is written when nothing changes."""
    merchant_id, endpoint_id = row["merchant_id"], row["endpoint_id"]
    before, version = Circuit.claimed(row), row["circuit_version"]
    after, change = after_attempt(before, ok, row["now"], ctx.settings)
    if after == before:  # a success on a closed, never-failed endpoint: the happy path
        return after, change
    with ctx.db.connection() as conn:
        for _ in range(MAX_TRIES):
            retry_in = after.open_seconds if change in ("opened", "reopened") else None
            stored = repo.write_circuit(
                conn, merchant_id, endpoint_id, version, after.stored(), retry_in
            )
            if stored is not None:
                return replace(after, retry_at=stored["retry_at"]), change
            # Another worker changed it since: work the change out again from what it stored.
            current = repo.read_circuit(conn, merchant_id, endpoint_id)
            before = Circuit.of(current)
            version = None if current is None else current["version"]
            after, change = after_attempt(before, ok, row["now"], ctx.settings)
            if after == before:
                return after, change
    raise RuntimeError(f"webhook circuit of {merchant_id}/{endpoint_id} kept changing")


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
