"""Redis wipes: the queue is only the fast path, so losing all of it three times loses nothing.

During a 300-payment run Redis is flushed, then killed and restarted empty (down for a second),
then flushed again. Every API call must still answer 201: an enqueue that fails is the
janitor's problem, not the client's. After the last wipe everything must settle, and every
final webhook arrive, within 10 s of Redis being back.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.chaos.load import create_payments

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

PAYMENTS = 300
RATE = 20.0  # ~15 s of load
SETTLE_AFTER_REDIS_BACK = 10.0


def test_redis_wiped_three_times_keeps_answering_201_and_settles_everything(
    chaos_run, record_figures
):
    run = chaos_run("wipes")
    run.start(consumers=2, concurrency=8)
    servers = run.servers
    wipes = [
        (3.5, "flush", servers.flush_redis),
        (7.5, "restart empty", lambda: servers.restart_redis_empty(down_seconds=1.0)),
        (11.5, "flush", servers.flush_redis),
    ]
    done: list[tuple[str, float, int]] = []  # (what, when Redis was back, payments pending)

    def wiper(started: float) -> None:
        for at, what, wipe in wipes:
            time.sleep(max(0.0, started + at - time.monotonic()))
            wipe()
            done.append((what, time.monotonic(), run.pending_all()))

    thread = threading.Thread(target=wiper, args=(time.monotonic(),), daemon=True)
    thread.start()
    load = create_payments(run.gateway.url, PAYMENTS, clients=8, rate=RATE)
    thread.join()

    assert [what for what, _, _ in done] == [what for _, what, _ in wipes]
    assert load.failures == [], load.failures[:5]
    assert dict(load.statuses) == {201: 2 * PAYMENTS}

    ids = load.payment_ids
    back = done[-1][1]
    _, problem = run.try_drain(ids, SETTLE_AFTER_REDIS_BACK - (time.monotonic() - back))
    settled_after_back = time.monotonic() - back
    record_figures(
        payments=len(ids),
        wipes=[what for what, _, _ in done],
        pending_at_each_wipe=[pending for _, _, pending in done],
        lost=run.pending(ids),
        statuses=dict(run.statuses(ids)),
        duplicates=run.duplicates(ids),
        load_seconds=round(load.seconds, 1),
        drain_seconds_after_last_wipe=round(settled_after_back, 1),
    )
    assert problem is None, problem
    assert run.pending(ids) == 0
    assert settled_after_back <= SETTLE_AFTER_REDIS_BACK
