"""A new payment's creation events travel as one delivery task, and a webhook thread takes its
share of a backlog at once: claimed together in one statement, delivered in order, recorded
together in one statement when the batch ends; a batch whose lease runs short gives the rest
back (docs/performance.md, "Issue 20"). Real PostgreSQL, Redis and HTTP receiver; the task runs
in process."""

from __future__ import annotations

import dataclasses
import json

from paygate.services import webhooks
from tests.factories import create_payment
from tests.fixtures import AUTH, run_queue, set_webhook_url


def test_a_payments_creation_events_are_one_task_delivered_in_order(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    queue = run_queue(ctx.settings)
    queue.bind(ctx)
    queue.flush()
    payment = create_payment(api, 50000, {"method": "upi", "vpa": "success@test"}, headers=AUTH)
    [process] = queue.huey.pending()
    [deliver] = queue.webhook_huey.pending()  # one task for both events
    assert (process.name, process.args) == ("process_payment", (payment["id"],))
    assert deliver.name == "deliver_webhook" and len(deliver.args) == 2

    queue.flush()
    queue.webhook_huey.execute(deliver)
    got = receiver.wait_for("/hooks", 2)
    assert [json.loads(r.body)["event"] for r in got] == ["payment.created", "payment.pending"]
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT status, attempts FROM webhook_logs WHERE id = ANY(%s::uuid[])",
            (list(deliver.args),),
        ).fetchall()
    assert [(r["status"], r["attempts"]) for r in rows] == [("success", 1)] * 2
    assert [a["attempt"] for a in attempts_of(ctx, deliver.args)] == [1, 1]

    # Run again (a redelivered message): nothing is due, nothing is sent.
    assert webhooks.deliver_batch(ctx, list(deliver.args)) == ["skipped", "skipped"]
    assert len(receiver.to("/hooks")) == 2


def test_the_batch_skips_what_is_no_longer_due_and_delivers_the_rest(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    queue = run_queue(ctx.settings)
    queue.bind(ctx)
    queue.flush()
    create_payment(api, 50000, {"method": "upi", "vpa": "success@test"}, headers=AUTH)
    [deliver] = queue.webhook_huey.pending()
    queue.flush()
    created, pending = deliver.args
    assert webhooks.deliver(ctx, created) == "success"  # delivered alone already
    assert webhooks.deliver_batch(ctx, [created, pending]) == ["skipped", "success"]
    events = [json.loads(r.body)["event"] for r in receiver.wait_for("/hooks", 2)]
    assert events == ["payment.created", "payment.pending"]


def test_a_webhook_thread_takes_a_backlog_several_at_a_time_in_queue_order(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    queue = run_queue(ctx.settings)
    queue.bind(ctx)
    queue.flush()
    for _ in range(3):
        create_payment(api, 50000, {"method": "upi", "vpa": "success@test"}, headers=AUTH)
    queued = [task.args for task in queue.webhook_huey.pending()]  # next to run first
    assert [len(args) for args in queued] == [2, 2, 2]
    queue.huey.flush()
    hooks = queue.webhook_huey
    assert hooks.batch == ctx.settings.webhook_batch == 8
    assert hooks.consumers == ctx.settings.webhook_concurrency == 8
    # Three messages for eight threads: each thread takes one (its share), as before.
    alone = hooks.dequeue()
    assert list(alone.args) == list(queued[0]) and hooks.pending_count() == 2
    hooks.consumers = 1  # one thread: the whole backlog is its share
    try:
        merged = hooks.dequeue()  # both remaining messages, one call with every id in order
    finally:
        hooks.consumers = ctx.settings.webhook_concurrency
    assert merged.name == "deliver_webhook"
    assert list(merged.args) == [i for args in queued[1:] for i in args]
    assert hooks.pending_count() == 0
    hooks.execute(alone)
    hooks.execute(merged)
    got = receiver.wait_for("/hooks", 6)
    assert [json.loads(r.body)["event"] for r in got] == ["payment.created", "payment.pending"] * 3
    assert hooks.dequeue() is None  # empty: waited on (BRPOP), nothing taken


def test_each_thread_takes_its_share_of_a_backlog_at_most_the_batch(ctx):
    queue = run_queue(ctx.settings)
    queue.flush()
    hooks = queue.webhook_huey
    for n in range(100):
        hooks.enqueue(queue.tasks.deliver_webhook.s(f"log_{n:03d}"))
    taken = []
    while hooks.pending_count():
        taken.append(hooks.dequeue().args)
    # 100 over 8 threads: 8 at a time (the batch) while at least 64 wait, then the share
    # (length // 8) as the queue shortens, then one by one.
    assert [len(args) for args in taken][:5] == [8, 8, 8, 8, 8]
    assert [len(args) for args in taken][-8:] == [1] * 8
    assert [i for args in taken for i in args] == [f"log_{n:03d}" for n in range(100)]


def test_a_message_of_another_task_runs_alone_and_the_rest_goes_back_in_order(ctx):
    # The deliveries' queue carries deliveries only; the rule is shown on the main queue's
    # Huey, given the same batching for refunds for the length of the test.
    queue = run_queue(ctx.settings)
    queue.flush()
    main = queue.huey
    refund = queue.tasks.process_refund
    before = main.batch, main.batchable, main.consumers
    main.batch, main.batchable = 8, frozenset({main._registry.task_to_string(refund.task_class)})
    main.consumers = 1  # one thread: the whole backlog is its share
    try:
        main.enqueue(queue.tasks.process_payment.s("pay_alone"))
        for refund_id in ("rfnd_a", "rfnd_b", "rfnd_c"):
            main.enqueue(refund.s(refund_id))
        first = main.dequeue()
        assert (first.name, first.args) == ("process_payment", ("pay_alone",))
        assert [t.args for t in main.pending()] == [("rfnd_a",), ("rfnd_b",), ("rfnd_c",)]
        merged = main.dequeue()
        assert merged.name == "process_refund"
        assert merged.args == ("rfnd_a", "rfnd_b", "rfnd_c") and main.pending_count() == 0
    finally:
        main.batch, main.batchable, main.consumers = before
        queue.flush()


def delivered(ctx, requests) -> list[str]:
    """The delivery ids of what the receiver got, in order of arrival (by the bytes sent)."""
    with ctx.db.connection() as conn:
        rows = conn.execute("SELECT id, body FROM webhook_logs").fetchall()
    by_body = {row["body"].encode(): str(row["id"]) for row in rows}
    return [by_body[request.body] for request in requests]


def attempts_of(ctx, log_ids) -> list[dict]:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT webhook_log_id, attempt, response_code, attempted_at FROM webhook_attempts"
            " WHERE webhook_log_id = ANY(%s::uuid[]) ORDER BY id",
            (list(log_ids),),
        ).fetchall()


def creation_events(ctx, api, queue, payments: int) -> list[str]:
    """The creation events' delivery ids of ``payments`` new payments, in order; the queues
    left empty (the caller runs the deliveries)."""
    for _ in range(payments):
        create_payment(api, 50000, {"method": "upi", "vpa": "success@test"}, headers=AUTH)
    ids = [i for task in reversed(queue.webhook_huey.pending()) for i in task.args]
    queue.flush()
    return ids


def test_a_batch_is_claimed_in_one_statement_and_recorded_in_one(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    queue = run_queue(ctx.settings)
    queue.bind(ctx)
    queue.flush()
    ids = creation_events(ctx, api, queue, 4)
    assert webhooks.deliver_batch(ctx, ids) == ["success"] * 8
    got = receiver.wait_for("/hooks", 8)
    assert delivered(ctx, got) == ids  # one after the other, in order
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT status, attempts, last_attempt_at, locked_until FROM webhook_logs"
            " WHERE id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
    assert {(r["status"], r["attempts"], r["locked_until"]) for r in rows} == {("success", 1, None)}
    # One statement wrote every record: one transaction, one now().
    assert len({r["last_attempt_at"] for r in rows}) == 1
    assert len({a["attempted_at"] for a in attempts_of(ctx, ids)}) == 1
    assert [str(a["webhook_log_id"]) for a in attempts_of(ctx, ids)] == ids


def test_a_batch_whose_lease_runs_short_gives_the_rest_back_unattempted(ctx, api, receiver):
    """Slow answers: each attempt starts only while a whole attempt still fits in the batch's
    lease; the rest goes back at once, due and enqueued, and is delivered by the next run."""
    set_webhook_url(ctx, receiver.url())
    queue = run_queue(ctx.settings)
    queue.bind(ctx)
    queue.flush()
    ids = creation_events(ctx, api, queue, 6)
    # An attempt's bound is 7 s (twice the 1 s timeout, and 5 s), the batch's lease 14 s;
    # answers take 0.8 s each: the tenth would start with less than 7 s of lease left.
    settings = dataclasses.replace(ctx.settings, job_lease_seconds=1, webhook_timeout_seconds=1)
    slow = dataclasses.replace(ctx, settings=settings)
    receiver.delay = 0.8
    try:
        outcomes = webhooks.deliver_batch(slow, ids)
    finally:
        receiver.delay = 0.0
    assert outcomes == ["success"] * 9 + ["deferred"] * 3, outcomes
    assert delivered(ctx, receiver.wait_for("/hooks", 9)) == ids[:9]
    with ctx.db.connection() as conn:
        back = conn.execute(
            "SELECT id, status, attempts, locked_until, enqueued_at FROM webhook_logs"
            " WHERE id = ANY(%s::uuid[]) ORDER BY created_at, id",
            (ids[9:],),
        ).fetchall()
    assert [(r["status"], r["attempts"], r["locked_until"]) for r in back] == [
        ("pending", 0, None)
    ] * 3
    assert all(r["enqueued_at"] is not None for r in back)
    again = [i for task in reversed(queue.webhook_huey.pending()) for i in task.args]
    assert sorted(again) == sorted(ids[9:])
    queue.flush()
    assert webhooks.deliver_batch(ctx, again) == ["success"] * 3
    assert len(receiver.wait_for("/hooks", 12)) == 12
    assert len(attempts_of(ctx, ids)) == 12
