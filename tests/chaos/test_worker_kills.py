"""Worker kills: SIGKILL a Huey consumer every 3-7 s under load and lose nothing.

500 payments from 8 concurrent clients (and a merchant refunding payments as they succeed),
processed by two consumer processes with a 1 s simulated bank delay, so every kill catches jobs
mid-flight, holding a lease, and tasks popped from the queue. After draining: every payment and
refund final, exactly one money movement per payment and per refund at the processor, every
final webhook delivered at least once. A control run without kills shows the pipeline itself
delivers each final webhook exactly once.
"""

from __future__ import annotations

import random
import threading

import pytest

from tests.chaos.load import Refunder, create_payments

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

PAYMENTS = 500
CLIENTS = 8
RATE = 20.0  # payments per second: the load lasts ~25 s, long enough for several kills
DRAIN_TIMEOUT = 60.0


def run_load(run, kills: bool) -> dict:
    run.start(consumers=2, concurrency=8)
    stop = threading.Event()
    killed: list[str] = []

    def killer() -> None:
        rng = random.Random(8)
        while not stop.wait(rng.uniform(3.0, 7.0)):
            victim = f"worker-{rng.randrange(2)}"
            run.restart_worker(victim)
            killed.append(victim)

    thread = threading.Thread(target=killer, daemon=True)
    if kills:
        thread.start()
    refunder = Refunder(run).start()
    load = create_payments(run.gateway.url, PAYMENTS, clients=CLIENTS, rate=RATE)
    refunder.stop()
    stop.set()
    if kills:
        thread.join()
    assert load.failures == [], load.failures[:5]
    assert load.acknowledged == PAYMENTS
    assert refunder.failures == [], refunder.failures[:5]

    ids, refund_ids = load.payment_ids, refunder.refund_ids
    drain, problem = run.try_drain(ids, DRAIN_TIMEOUT, refund_ids)
    charges, refunded = run.charges(), run.refunds_moved()
    return {
        "ids": ids,
        "refund_ids": refund_ids,
        "problem": problem,
        "figures": {
            "payments": len(ids),
            "refunds": len(refund_ids),
            "kills": len(killed),
            "lost": run.pending(ids),
            "rescued": run.rescued(ids),
            "slowest_settle_seconds": run.slowest_settle(ids),
            "statuses": dict(run.statuses(ids)),
            "duplicates": run.duplicates(ids + refund_ids),
            "charged_once": sum(1 for i in ids if charges[i] == 1),
            "charged_twice_or_more": sum(1 for i in ids if charges[i] > 1),
            "refunded_once": sum(1 for i in refund_ids if refunded[i] == 1),
            "processor_calls": dict(run.processor_calls()),
            "load_seconds": round(load.seconds, 1),
            "drain_seconds": drain,
        },
    }


def test_control_run_without_kills_delivers_every_final_webhook_exactly_once(
    chaos_run, record_figures
):
    run = chaos_run("control")
    outcome = run_load(run, kills=False)
    figures = outcome["figures"]
    record_figures(**figures)
    assert outcome["problem"] is None, outcome["problem"]
    assert figures["lost"] == 0
    assert figures["charged_once"] == PAYMENTS
    assert figures["refunds"] > 0 and figures["refunded_once"] == figures["refunds"]
    assert figures["duplicates"] == 0


def test_sigkilled_workers_lose_no_payment_and_charge_each_exactly_once(chaos_run, record_figures):
    run = chaos_run("kills")
    outcome = run_load(run, kills=True)
    figures = outcome["figures"]
    record_figures(**figures)
    assert outcome["problem"] is None, outcome["problem"]
    assert figures["kills"] >= 3
    assert figures["lost"] == 0
    assert sum(figures["statuses"].values()) == PAYMENTS
    # Money moved exactly once per payment: a repeated charge call is only allowed under the
    # same idempotency key, where the bank answers from its record.
    assert figures["charged_once"] == PAYMENTS, figures
    assert figures["refunds"] > 0 and figures["refunded_once"] == figures["refunds"], figures
    # At-least-once delivery: nothing missing (wait_drained checked it), duplicates allowed.
    assert run.undelivered(outcome["ids"], outcome["refund_ids"]) == []
