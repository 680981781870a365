"""A worker thread takes a backlog's payments several at a time: one statement claims them all,
each is settled in turn, and a batch that runs past its window gives the rest back unattempted
(docs/performance.md, "Issue 20"). Real PostgreSQL and Redis; the tasks run in process."""

from __future__ import annotations

from paygate.db import payments as repo
from paygate.services import payments
from tests.factories import create_payment
from tests.fixtures import AUTH, run_queue


def new_payments(api, count: int, vpa: str = "success@test") -> list[str]:
    method = {"method": "upi", "vpa": vpa}
    return [create_payment(api, 50000, method, headers=AUTH)["id"] for _ in range(count)]


def rows(ctx, ids: list[str]) -> list[dict]:
    with ctx.db.connection() as conn:
        found = conn.execute(
            "SELECT id, status, processor_attempts, locked_until, enqueued_at FROM payments"
            " WHERE id = ANY(%s)",
            (ids,),
        ).fetchall()
    by_id = {row["id"]: row for row in found}
    return [by_id[i] for i in ids]


def test_a_backlog_is_taken_several_payments_at_a_time_and_settled(ctx, api):
    queue = run_queue(ctx.settings)
    queue.bind(ctx)
    queue.flush()
    ids = new_payments(api, 4)
    queue.webhook_huey.flush()
    main = queue.huey
    assert main.batch == ctx.settings.payment_batch == 8
    main.consumers = 1  # one thread: the whole backlog is its share
    try:
        task = main.dequeue()
    finally:
        main.consumers = ctx.settings.worker_concurrency
    assert task.name == "process_payment" and list(task.args) == ids
    assert main.pending_count() == 0
    main.execute(task)
    assert [(r["status"], r["processor_attempts"], r["locked_until"]) for r in rows(ctx, ids)] == [
        ("success", 1, None)
    ] * 4
    queue.flush()
    # Run again (a redelivered message): nothing is pending, nothing is claimed.
    assert payments.process_batch(ctx, ids) == ["skipped"] * 4
    assert [r["processor_attempts"] for r in rows(ctx, ids)] == [1] * 4


def test_a_batch_leaves_what_another_worker_holds(ctx, api):
    queue = run_queue(ctx.settings)
    queue.flush()
    ids = new_payments(api, 3)
    queue.flush()
    with ctx.db.connection() as conn:
        assert repo.claim(conn, ids[1], 30) is not None  # another worker's
    assert payments.process_batch(ctx, ids) == ["success", "skipped", "success"]
    assert [r["status"] for r in rows(ctx, ids)] == ["success", "pending", "success"]
    queue.flush()


def test_a_batch_past_its_window_gives_the_rest_back_unattempted(make_ctx, api):
    """The first payment takes 1.5 s at the processor (asked again inline until it knows): the
    next would start after the batch's window (here 0.5 s; each payment must have a whole lease
    ahead of it), so the rest goes back at once: due, the claim's attempt taken back, enqueued
    again."""
    slow = make_ctx(TEST_PROCESSING_DELAY="1500")
    queue = run_queue(slow.settings)
    queue.flush()
    ids = new_payments(api, 3, vpa="asha@okaxis")  # not an instant test VPA: it takes the delay
    queue.flush()
    assert payments.process_batch(slow, ids, window=0.5) == ["success", "deferred", "deferred"]
    back = rows(slow, ids)[1:]
    assert [(r["status"], r["processor_attempts"], r["locked_until"]) for r in back] == [
        ("pending", 0, None)
    ] * 2
    assert all(r["enqueued_at"] is not None for r in back)
    assert sorted(t.args for t in queue.huey.pending()) == sorted([(ids[1],), (ids[2],)])
    queue.flush()
    assert payments.process_batch(slow, ids[1:]) == ["success", "success"]
    assert [r["processor_attempts"] for r in rows(slow, ids)] == [1, 1, 1]
