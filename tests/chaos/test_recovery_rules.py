"""The recovery rules the fault tests rely on, one at a time and in-process (no faults injected):
which rows the janitor re-dispatches and when, the processor ledger, quiet outage logs."""

from __future__ import annotations

import logging

from paygate.builtin.processors import testmode
from paygate.errors import ServiceUnavailable
from paygate.jobs.janitor import Janitor
from paygate.jobs.worker import OutageLogFilter
from paygate.services import payments, recovery
from paygate.types import ChargeRequest
from tests.chaos.load import ledger_calls, ledger_charges
from tests.factories import create_payment
from tests.fixtures import AUTH, make_settings, run_queue

LONG = 30.0  # redispatch_after: longer than any of these tests


def new_payments(api, count: int) -> list[str]:
    upi = {"method": "upi", "vpa": "user@okaxis"}
    return [create_payment(api, 1000, upi)["id"] for _ in range(count)]


def set_rows(ctx, sql: str, ids: list[str]) -> None:
    with ctx.db.connection() as conn:
        conn.execute(f"UPDATE payments SET {sql} WHERE id = ANY(%s)", (ids,))


def test_an_expired_lease_is_redispatched_at_once_and_only_once(ctx, api):
    died, working, queued = new_payments(api, 3)
    # A worker claimed it after it was queued and died: the lease ran out.
    set_rows(
        ctx, "enqueued_at = now() - interval '2 s', locked_until = now() - interval '1 s'", [died]
    )
    set_rows(ctx, "locked_until = now() + interval '30 s'", [working])  # still being worked on
    first = recovery.due_work(ctx, LONG)["payments"]
    again = recovery.due_work(ctx, LONG)["payments"]
    assert first == [died]  # not ``queued``: dispatched moments ago, it may still be waiting
    assert again == []
    assert queued not in first


def test_a_refund_whose_worker_died_is_redispatched_too(ctx, api):
    (payment_id,) = new_payments(api, 1)
    assert payments.process(ctx, payment_id) == "success"
    refund = api.simulate_post(
        f"/api/v1/payments/{payment_id}/refunds", json={"amount": 100}, headers=AUTH
    )
    assert refund.status_code == 201, refund.text
    refund_id = refund.json["id"]
    assert recovery.due_work(ctx, LONG)["refunds"] == []  # just queued
    with ctx.db.connection() as conn:
        conn.execute(
            """UPDATE refunds SET enqueued_at = now() - interval '2 s',
                      locked_until = now() - interval '1 s' WHERE id = %s""",
            (refund_id,),
        )
    assert recovery.due_work(ctx, LONG)["refunds"] == [refund_id]
    assert recovery.due_work(ctx, LONG)["refunds"] == []


def test_rows_dispatched_before_the_queue_was_lost_come_back_in_batches(ctx, api):
    ids = new_payments(api, 5)
    leased = ids.pop()
    set_rows(ctx, "locked_until = now() + interval '30 s'", [leased])
    batches = list(recovery.all_due_work(ctx, LONG, limit=2))
    found = [i for batch in batches for i in batch["payments"]]
    assert sorted(found) == sorted(ids)  # each once, the leased one not at all
    assert len(batches) == 3
    assert recovery.due_work(ctx, LONG)["payments"] == []


def test_the_janitor_dispatches_everything_due_when_redis_lost_the_queue(make_ctx, api):
    ctx = make_ctx(PAYGATE_REDISPATCH_AFTER=str(LONG))
    queue = run_queue(ctx.settings)
    huey = queue.huey
    janitor = Janitor(ctx, queue.new_dispatcher())
    janitor.sweep()  # puts the marker in place (a new queue counts as a lost one)
    ids = new_payments(api, 3)
    assert huey.pending_count() >= 3
    assert janitor.sweep()["payments"] == 0  # queued moments ago: they may still be waiting

    huey.storage.conn.delete(queue.marker_key)  # what FLUSHALL or an empty restart does to it
    queued = huey.pending_count()
    found = janitor.sweep()
    assert found["payments"] == 3
    assert huey.pending_count() == queued + 3
    assert janitor.sweep()["payments"] == 0
    with ctx.db.connection() as conn:
        pending = conn.execute(
            "SELECT count(*) AS n FROM payments WHERE id = ANY(%s) AND status = 'pending'", (ids,)
        ).fetchone()
    assert pending["n"] == 3  # dispatching is all the janitor does


def test_the_ledger_counts_money_once_per_key_across_repeated_charges(tmp_path, ctx, api):
    ledger = tmp_path / "processor.ledger"
    processor = testmode.TestModeProcessor(make_settings(PAYGATE_TESTMODE_LEDGER=str(ledger)))
    (payment_id,) = new_payments(api, 1)
    payment = payments.get(ctx, None, payment_id)
    for attempt in (1, 2, 3):  # a job re-run after crashes: same key every time
        processor.charge(
            ChargeRequest(payment=payment, idempotency_key=payment.id, attempt=attempt)
        )
    assert ledger_charges(ledger) == {payment_id: 1}
    assert ledger_calls(ledger) == {"charge": 1, "charge-repeat": 2}
    # A different key for the same payment is what a double charge looks like.
    processor.charge(ChargeRequest(payment=payment, idempotency_key="other-key", attempt=4))
    assert ledger_charges(ledger) == {payment_id: 2}


def test_outage_errors_are_logged_once_without_a_traceback_and_bugs_in_full(caplog):

    logger = logging.getLogger("paygate-test-outage-filter")
    logger.addFilter(OutageLogFilter(every=60))
    with caplog.at_level(logging.INFO, logger=logger.name):
        for _ in range(3):
            try:
                raise ServiceUnavailable()
            except ServiceUnavailable:
                logger.exception("Unhandled exception in task %s.", "t1")
        try:
            raise KeyError("a bug")
        except KeyError:
            logger.exception("Unhandled exception in task %s.", "t2")
    outage, bug = caplog.records
    assert outage.levelname == "WARNING" and outage.exc_info is None
    assert "t1" in outage.getMessage() and "ServiceUnavailable" in outage.getMessage()
    assert bug.levelname == "ERROR" and bug.exc_info is not None
