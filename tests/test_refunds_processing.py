"""Refund processing in-process: the worker-side service against the test processor plugin,
the freed amount on failure, the outbox events, and the job counts."""

from __future__ import annotations

import json

from paygate.services import refunds
from tests.fixtures import AUTH, set_webhook_url
from tests.test_refunds import paid_payment, read_payment, refund

# -- processing -------------------------------------------------------------------------------


def test_processing_moves_pending_to_processed_once(ctx, api):
    payment = paid_payment(ctx, api)
    created = refund(api, payment["id"], {"amount": 400}).json
    assert refunds.process(ctx, created["id"]) == "processed"
    assert refunds.process(ctx, created["id"]) == "skipped"  # a second run changes nothing
    read = api.simulate_get(f"/api/v1/refunds/{created['id']}", headers=AUTH).json
    assert read["status"] == "processed"
    assert read["processed_at"] is not None and read["processed_at"] >= read["created_at"]
    assert read_payment(api, payment["id"])["amount_refunded"] == 400


def test_processor_failure_marks_the_refund_failed_and_frees_the_amount(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    created = refund(api, payment["id"], {"amount": 10000, "reason": "fail@test"}).json
    assert read_payment(api, payment["id"])["amount_refunded"] == 10000
    assert refunds.process(ctx, created["id"]) == "failed"
    read = api.simulate_get(f"/api/v1/refunds/{created['id']}", headers=AUTH).json
    assert read["status"] == "failed" and read["processed_at"] is None
    assert read["error_code"] == "REFUND_FAILED"
    assert read_payment(api, payment["id"])["amount_refunded"] == 0
    assert refund(api, payment["id"], {"amount": 10000}).status_code == 201


def test_outside_test_mode_the_refund_waits_three_to_five_seconds(make_ctx, api):
    ctx = make_ctx(TEST_MODE="false", PROCESSING_DELAY_MIN="0", PROCESSING_DELAY_MAX="0")
    payment = paid_payment(ctx, api, vpa="success@test")
    assert payment["status"] == "success"
    created = refund(api, payment["id"], {"amount": 100}).json
    assert refunds.process(ctx, created["id"]) == "deferred"
    with ctx.db.connection() as conn:
        row = conn.execute(
            """SELECT status, locked_until, enqueued_at,
                      extract(epoch FROM next_check_at - created_at) AS wait
                 FROM refunds WHERE id = %s""",
            (created["id"],),
        ).fetchone()
    assert row["status"] == "pending"
    assert row["locked_until"] is None and row["enqueued_at"] is None  # the janitor's again
    assert 2.5 <= float(row["wait"]) <= 5.5
    assert refunds.process(ctx, created["id"]) == "skipped"  # not due yet


def test_refund_events_go_through_the_outbox_with_the_refund_view(ctx, api):
    set_webhook_url(ctx, "http://127.0.0.1:9/hooks")
    payment = paid_payment(ctx, api)
    ok = refund(api, payment["id"], {"amount": 300}).json
    bad = refund(api, payment["id"], {"amount": 200, "reason": "fail@test"}).json
    refunds.process(ctx, ok["id"])
    refunds.process(ctx, bad["id"])
    with ctx.db.connection() as conn:
        logs = conn.execute(
            """SELECT event, resource_id, body FROM webhook_logs
                WHERE event LIKE 'refund.%%' ORDER BY created_at, event"""
        ).fetchall()
    seen = {(row["resource_id"], row["event"]) for row in logs}
    assert seen == {
        (ok["id"], "refund.created"),
        (ok["id"], "refund.processed"),
        (bad["id"], "refund.created"),
        (bad["id"], "refund.failed"),
    }
    for row in logs:
        body = json.loads(row["body"])
        assert body["event"] == row["event"] and isinstance(body["timestamp"], int)
        assert body["data"]["refund"]["id"] == row["resource_id"]
        assert body["data"]["refund"]["payment_id"] == payment["id"]
    processed = next(json.loads(r["body"]) for r in logs if r["event"] == "refund.processed")
    assert processed["data"]["refund"]["status"] == "processed"
    assert processed["data"]["refund"]["processed_at"] is not None


def test_job_status_counts_refunds(ctx, api):
    payment = paid_payment(ctx, api)
    ok = refund(api, payment["id"], {"amount": 300}).json
    refund(api, payment["id"], {"amount": 200, "reason": "fail@test"})
    before = api.simulate_get("/api/v1/test/jobs/status").json
    assert before["pending"] == 2
    refunds.process(ctx, ok["id"])
    after = api.simulate_get("/api/v1/test/jobs/status").json
    assert after["pending"] == 1 and after["completed"] == before["completed"] + 1
