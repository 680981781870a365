"""A new payment's creation events travel as one delivery task: claimed together in one
statement, delivered in order, each recorded after its own attempt (docs/performance.md,
"Issue 20"). Real PostgreSQL, Redis and HTTP receiver; the task runs in process."""

from __future__ import annotations

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
