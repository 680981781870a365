"""The gates every benchmark checks: they decide whether a figure counts at all.

A gate is ``{"ok": bool, "detail": str}``. Pure functions over what the load generator, the
database and the receiver saw, so tests/test_bench_smoke.py can prove each one fails when it
should.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

Gate = dict[str, object]

TERMINAL_EVENTS = ("payment.success", "payment.failed")


def gate(ok: bool, detail: str) -> Gate:
    return {"ok": bool(ok), "detail": detail}


def all_created(not_created: int, errors: int) -> Gate:
    """0 non-2xx answers and 0 requests that got no answer at all."""
    return gate(
        not_created == 0 and errors == 0,
        f"{not_created} answers were not 201, {errors} requests failed at the socket",
    )


def rows_match_answers(rows: int, answered: int, in_flight: int) -> Gate:
    """Every 201 is a row; rows beyond the answers can only be requests in flight at cut-off."""
    return gate(
        answered <= rows <= answered + in_flight,
        f"{rows} payment rows for {answered} answers (at most {in_flight} in flight at the end)",
    )


def jobs_enqueued(queued: int, expected: int, held_by_paused_worker: int) -> Gate:
    """Every job was enqueued after commit. A stopped worker's threads were each blocked in
    BRPOP when it stopped, so Redis hands each of them one job: those are not in the queue."""
    return gate(
        expected - held_by_paused_worker <= queued <= expected,
        f"{queued} jobs queued, {expected} expected (per payment: 1 processing + 1 delivery "
        "of its two creation events; "
        f"up to {held_by_paused_worker} held by the stopped worker's blocked threads)",
    )


def outbox_once_per_payment(
    counts: dict[str, tuple[int, int]], payments: int, settled: int
) -> Gate:
    """The outbox holds exactly one payment.created and one payment.pending row per payment
    and exactly one terminal event per settled payment."""
    problems = []
    for event in ("payment.created", "payment.pending"):
        rows, distinct = counts.get(event, (0, 0))
        if rows != payments or distinct != payments:
            problems.append(f"{event}: {rows} rows for {distinct} of {payments} payments")
    terminal_rows = sum(counts.get(e, (0, 0))[0] for e in TERMINAL_EVENTS)
    terminal_distinct = sum(counts.get(e, (0, 0))[1] for e in TERMINAL_EVENTS)
    if terminal_rows != settled or terminal_distinct != settled:
        problems.append(f"terminal events: {terminal_rows} rows for {settled} settled payments")
    return gate(not problems, "; ".join(problems) or f"{payments} payments, {settled} settled")


def all_final(states: dict[str, int], expected: int) -> Gate:
    final = sum(n for status, n in states.items() if status != "pending")
    return gate(
        final == expected and sum(states.values()) == expected,
        f"{final} of {expected} payments final ({dict(states)})",
    )


def deliveries_done(states: dict[str, int], expected: int) -> Gate:
    done = states.get("success", 0)
    return gate(done == expected, f"{done} of {expected} deliveries recorded as success")


def no_bad_signatures(bad: int) -> Gate:
    return gate(bad == 0, f"{bad} deliveries failed signature verification")


def one_webhook_per_event(
    arrivals: Iterable[list], resources: Iterable[str], events: tuple[str, ...]
) -> Gate:
    """Each resource received each of ``events`` exactly once, and nothing else about it.

    ``arrivals`` are the receiver's records: (event, resource id, webhook-id, time, ok).
    """
    wanted = set(resources)
    seen = Counter((a[0], a[1]) for a in arrivals if a[1] in wanted)
    missing = sum(1 for r in wanted for e in events if seen[(e, r)] == 0)
    duplicated = sum(1 for n in seen.values() if n > 1)
    unexpected = sum(1 for (e, _r) in seen if e not in events)
    return gate(
        missing == 0 and duplicated == 0 and unexpected == 0,
        f"{len(wanted)} resources: {missing} missing, {duplicated} duplicated, "
        f"{unexpected} unexpected deliveries",
    )


def summarize(gates: dict[str, Gate]) -> bool:
    return all(g["ok"] for g in gates.values())


def every_create_answered(sent: int, created: int, not_created: int, errors: int) -> Gate:
    """Every create sent was answered 201 (none failed, none went unanswered)."""
    return gate(
        created == sent and not_created == 0 and errors == 0,
        f"{created} of {sent} creates answered 201, {not_created} not 201, "
        f"{errors} failed at the socket",
    )


def burst_gates(
    *,
    sent: int,
    created: list[str],
    not_created: int,
    errors: int,
    states: dict[str, int],
    arrivals: list,
    bad_signatures: int,
    delivery_states: dict[str, int],
    events: tuple[str, ...],
) -> dict[str, Gate]:
    """B7's gates: every create 201, every payment final, each payment's ``events`` received
    exactly once (and nothing else about it), 0 bad signatures, every delivery recorded."""
    return {
        "all_201": every_create_answered(sent, len(created), not_created, errors),
        "final": all_final(states, len(created)),
        "signatures": no_bad_signatures(bad_signatures),
        "one_webhook_each": one_webhook_per_event(arrivals, created, events),
        "delivered": deliveries_done(delivery_states, len(created) * len(events)),
    }


def last_arrival(
    arrivals: Iterable[list], resources: Iterable[str], events: tuple[str, ...]
) -> float | None:
    """When the receiver held every one of ``events`` for every resource: the latest of their
    first arrivals (CLOCK_MONOTONIC seconds), or None while one is missing."""
    wanted = set(resources)
    first: dict[tuple[str, str], float] = {}
    for a in arrivals:
        if a[0] in events and a[1] in wanted:
            key = (a[0], a[1])
            first[key] = min(first.get(key, a[3]), a[3])
    if len(first) < len(wanted) * len(events):
        return None
    return max(first.values(), default=None)
