"""A worker thread takes a backlog's payments several at a time: one statement claims them all,
each is asked in turn, their final outcomes are written together (one statement, with their
events and webhook logs), and a batch that runs past its window gives the rest back unattempted
(docs/performance.md, "Issue 20"). Real PostgreSQL and Redis; the tasks run in process."""

from __future__ import annotations

import threading
import time

from paygate.config import TEST_MERCHANT_ID
from paygate.db import payments as repo
from paygate.services import payments
from tests.factories import create_order, create_payment, post_payment
from tests.fixtures import AUTH, OTHER_AUTH, OTHER_MERCHANT_ID, run_queue, set_webhook_url


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


def test_a_batchs_outcomes_are_written_together_with_each_merchants_events(
    ctx, api, other_merchant
):
    """Successes and failures of two merchants in one batch: each payment final, a success's
    order paid, one event each in the event log, and each event's webhook logs where that
    merchant subscribed (the test merchant's primary URL; the other merchant's endpoint takes
    only payment.failed), their deliveries enqueued."""
    queue = run_queue(ctx.settings)
    queue.flush()
    set_webhook_url(ctx, "https://example.com/primary")
    endpoint = api.simulate_post(
        "/api/v1/webhooks/endpoints",
        json={"url": "https://example.com/other", "events": ["payment.failed"]},
        headers=OTHER_AUTH,
    )
    assert endpoint.status_code == 201, endpoint.text
    mine = [
        create_payment(api, 50000, {"method": "upi", "vpa": vpa}, headers=AUTH)
        for vpa in ("success@test", "failure@test")
    ]
    theirs = [
        create_payment(api, 50000, {"method": "upi", "vpa": vpa}, headers=OTHER_AUTH)
        for vpa in ("failure@test", "success@test")
    ]
    ids = [p["id"] for p in (mine[0], theirs[0], mine[1], theirs[1])]
    queue.flush()
    with ctx.db.connection() as conn:
        conn.execute("DELETE FROM webhook_logs")
    assert payments.process_batch(ctx, ids) == ["success", "failed", "failed", "success"]
    with ctx.db.connection() as conn:
        paid = conn.execute(
            "SELECT o.status FROM orders o JOIN payments p ON p.order_id = o.id"
            " WHERE p.id = ANY(%s) ORDER BY array_position(%s, p.id)",
            (ids, ids),
        ).fetchall()
        recorded = conn.execute(
            "SELECT resource_id, merchant_id::text, event FROM events WHERE resource_id = ANY(%s)"
            " AND event IN ('payment.success', 'payment.failed') ORDER BY resource_id",
            (ids,),
        ).fetchall()
        logs = conn.execute(
            "SELECT id::text, resource_id, merchant_id::text, event, endpoint_id::text,"
            " event_id::text, payload->'data'->'payment'->>'status' AS status"
            " FROM webhook_logs ORDER BY resource_id"
        ).fetchall()
    assert [r["status"] for r in paid] == ["paid", "created", "created", "paid"]
    merchant_of = {p["id"]: m for m, group in (("test", mine), ("other", theirs)) for p in group}
    merchant_ids = {"test": TEST_MERCHANT_ID, "other": OTHER_MERCHANT_ID}
    outcome = dict(zip(ids, ["success", "failed", "failed", "success"], strict=True))
    assert sorted((r["resource_id"], r["merchant_id"], r["event"]) for r in recorded) == sorted(
        (i, merchant_ids[merchant_of[i]], f"payment.{outcome[i]}") for i in ids
    )
    expected = sorted(
        [(p["id"], merchant_ids["test"], f"payment.{outcome[p['id']]}", None) for p in mine]
        + [(theirs[0]["id"], merchant_ids["other"], "payment.failed", endpoint.json["id"])]
    )
    assert (
        sorted((r["resource_id"], r["merchant_id"], r["event"], r["endpoint_id"]) for r in logs)
        == expected
    )
    assert all(r["status"] == outcome[r["resource_id"]] for r in logs)
    assert all(r["id"] == r["event_id"] for r in logs if r["endpoint_id"] is None)
    queued = sorted(task.args[0] for task in queue.webhook_huey.pending())
    assert queued == sorted(r["id"] for r in logs)
    queue.flush()


def test_a_buyers_success_is_written_after_the_outcomes_before_it(ctx, api):
    """A buyer's (checkout) success is settled on its own, after the outcomes its batch holds:
    here the merchant's own payment on the same order came first and paid it, so the buyer's
    is a duplicate and is refunded automatically in the same transaction, as when each is
    settled alone."""
    queue = run_queue(ctx.settings)
    queue.flush()
    order = create_order(api, 50000, AUTH)["id"]
    merchants = create_payment(
        api, method={"method": "upi", "vpa": "success@test"}, headers=AUTH, order_id=order
    )
    buyers = post_payment(
        api, order, {"method": "upi", "vpa": "success@test"}, path="/api/v1/payments/public"
    )
    assert buyers.status_code == 201, buyers.text
    ids = [merchants["id"], buyers.json["id"]]
    queue.flush()
    assert payments.process_batch(ctx, ids) == ["success", "success"]
    with ctx.db.connection() as conn:
        refunds = conn.execute(
            "SELECT payment_id, amount, reason FROM refunds WHERE payment_id = ANY(%s)", (ids,)
        ).fetchall()
    assert [(r["payment_id"], r["amount"]) for r in refunds] == [(ids[1], 50000)]
    queue.flush()


def test_a_batch_whose_statement_fails_settles_each_alone(ctx, api, caplog):
    """The batch's one statement is cancelled while it waits for an order another transaction
    holds: each outcome is then written on its own, and nothing is lost."""
    queue = run_queue(ctx.settings)
    queue.flush()
    ids = new_payments(api, 2)
    queue.flush()
    with ctx.db.connection() as conn:
        order_id = conn.execute(
            "SELECT order_id FROM payments WHERE id = %s", (ids[0],)
        ).fetchone()["order_id"]
    held = threading.Event()
    cancelled = []

    def hold_the_order() -> None:
        with ctx.db.transaction() as other:
            other.execute("SELECT 1 FROM orders WHERE id = %s FOR UPDATE", (order_id,))
            held.set()
            deadline = time.monotonic() + 10
            while not cancelled and time.monotonic() < deadline:
                other.execute("SELECT pg_stat_clear_snapshot()")  # a fresh view each time
                waiting = other.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%%WITH input AS%%'"
                ).fetchall()
                for row in waiting:
                    cancelled.append(
                        other.execute(
                            "SELECT pg_cancel_backend(%s) AS done", (row["pid"],)
                        ).fetchone()["done"]
                    )
                time.sleep(0.02)

    holder = threading.Thread(target=hold_the_order)
    holder.start()
    held.wait(5)
    try:
        outcomes = payments.process_batch(ctx, ids)
    finally:
        holder.join()
    assert cancelled == [True]
    assert outcomes == ["success", "success"]
    assert [r["status"] for r in rows(ctx, ids)] == ["success", "success"]
    assert "settling 2 payments together failed; settling each alone" in caplog.text
    queue.flush()
