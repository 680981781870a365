"""The statements a drain runs once per payment or delivery find their row by primary key, not
by scanning a partial "due" index (``WHERE status = 'pending'``) and filtering every pending
row for the id (paygate/db/scheduling.py's docstring says why they guard with
``(status = 'pending') IS TRUE``).

The hazard needs the index's statistics to say it is empty while it is not: exactly what every
test's freshly truncated record gives (``clean``), with a backlog of pending rows written after
it. Real PostgreSQL; each statement is EXPLAINed with the parameters the worker passes, as
PostgreSQL would plan it for the worker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from paygate.db import payments as payments_repo
from paygate.db import scheduling
from paygate.db import webhooks as webhooks_repo
from paygate.db.outbox import event_params
from tests.factories import create_payment
from tests.fixtures import AUTH, TEST_MERCHANT_ID, set_webhook_url

BACKLOG = 400
# The partial indexes of due work: for the janitor's sweeps, never for a row known by its id.
DUE_INDEXES = {
    "idx_payments_due",
    "idx_refunds_due",
    "idx_payment_operations_due",
    "idx_webhook_logs_next_retry_at",
    "idx_webhook_logs_deferred",
}


class Recorder:
    """Stands in for a connection: keeps what a repository function would execute."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, object]] = []

    def execute(self, query, params=None):
        self.statements.append((query, params))
        return self

    def fetchone(self):
        return None

    def fetchall(self):
        return []


JOB_TABLES = {"payments", "refunds", "payment_operations", "webhook_logs"}


def indexes_used(conn, query: str, params) -> set[str]:
    """The indexes the plan reads (a sequential scan of a job table counts as ``seq:<table>``)."""
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + query, params).fetchone()["QUERY PLAN"]
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if "Index Name" in node:
                found.add(node["Index Name"])
            if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in JOB_TABLES:
                found.add("seq:" + node["Relation Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found


@pytest.fixture
def backlog(ctx, api):
    """One real payment with its outbox rows, copied into a backlog of ``BACKLOG`` pending
    payments and deliveries (new ids, same everything else), on a record just truncated."""
    set_webhook_url(ctx, "http://127.0.0.1:9/hooks")
    payment = create_payment(api, 50000, {"method": "upi", "vpa": "success@test"}, headers=AUTH)
    with ctx.db.connection() as conn:
        conn.execute(
            """INSERT INTO payments
               SELECT (jsonb_populate_record(p, jsonb_build_object('id', p.id || '_' || g))).*
                 FROM payments p, generate_series(1, %s) g""",
            (BACKLOG,),
        )
        conn.execute(
            """INSERT INTO webhook_logs
               SELECT (jsonb_populate_record(w, jsonb_build_object('id', gen_random_uuid()))).*
                 FROM webhook_logs w, generate_series(1, %s) g""",
            (BACKLOG // 2,),
        )
        log_id = conn.execute(
            "SELECT id FROM webhook_logs WHERE resource_id = %s LIMIT 1", (payment["id"],)
        ).fetchone()["id"]
        pending = conn.execute(
            "SELECT (SELECT count(*) FROM payments WHERE status = 'pending') AS payments,"
            " (SELECT count(*) FROM webhook_logs WHERE status = 'pending') AS deliveries"
        ).fetchone()
    assert pending["payments"] > BACKLOG and pending["deliveries"] > BACKLOG
    return payment, str(log_id)


def settle_params(payment: dict) -> dict:
    return {
        "status": "success",
        "error_code": None,
        "error_description": None,
        "reference": "ref_1",
        "updated_at": datetime.now(UTC),
        "resource_id": payment["id"],
        **event_params(TEST_MERCHANT_ID, payment["id"], [{"event": "payment.success"}]),
    }


def test_the_backlog_is_the_hazard_a_plain_pending_guard_would_meet(ctx, backlog):
    """The control: under these statistics the plain guard is planned on the due index (if a
    PostgreSQL release stops doing so, the rule is no longer needed and this says so)."""
    payment, _ = backlog
    plain = payments_repo.SETTLE.replace("(status = 'pending') IS TRUE", "status = 'pending'", 1)
    assert plain != payments_repo.SETTLE
    with ctx.db.connection() as conn:
        assert "idx_payments_due" in indexes_used(conn, plain, settle_params(payment))


def test_settling_a_payment_reads_it_by_primary_key(ctx, backlog):
    payment, _ = backlog
    with ctx.db.connection() as conn:
        used = indexes_used(conn, payments_repo.SETTLE, settle_params(payment))
    assert "payments_pkey" in used and not used & DUE_INDEXES
    assert not any(name.startswith("seq:") for name in used), used


def test_settling_a_batch_reads_its_payments_by_primary_key(ctx, backlog):
    """A batch's settle finds its payments by primary key, away from the due indexes. (On
    the backlog alone, a few hundred rows, reading the table beats eight index lookups and is
    what PostgreSQL rightly picks: the table is grown first to a size where it would not.)"""
    payment, _ = backlog
    others = [{**payment, "id": f"{payment['id']}_{n}"} for n in range(1, 8)]
    params = payments_repo.settle_many_params([settle_params(p) for p in (payment, *others)])
    with ctx.db.connection() as conn:
        conn.execute(
            """INSERT INTO payments
               SELECT (jsonb_populate_record(p, jsonb_build_object('id', p.id || '_x' || g))).*
                 FROM payments p, generate_series(1, 20) g""",
        )
        used = indexes_used(conn, payments_repo.SETTLE_MANY, params)
    assert "payments_pkey" in used and not used & DUE_INDEXES
    assert not any(name.startswith("seq:") for name in used), used


def test_the_workers_per_row_statements_read_rows_by_primary_key(ctx, backlog):
    payment, log_id = backlog
    pid, lease = payment["id"], datetime.now(UTC)
    recorder = Recorder()
    payments_repo.claim(recorder, pid, 30)
    payments_repo.claim_many(recorder, [pid, pid + "_1"], 32)
    payments_repo.give_back(recorder, [pid], lease)
    payments_repo.defer(recorder, pid, 5, None, True)
    payments_repo.make_due(recorder, pid)
    scheduling.claim(recorder, "refunds", "rfnd_x", 30, "id")
    webhooks_repo.claim(recorder, log_id, 30)
    webhooks_repo.claim_many(recorder, [log_id], 30)
    webhooks_repo.give_back(recorder, [log_id], lease)
    webhooks_repo.unclaim_and_defer(recorder, log_id, lease, lease)
    webhooks_repo.abandon_without_url(recorder, log_id, lease, "gone")
    attempt = {
        "id": log_id,
        "lease": lease,
        "attempt": 1,
        "url": "http://127.0.0.1:9/hooks",
        "ok": True,
        "response_code": 200,
        "response_body": "",
        "error": None,
        "duration_ms": 3,
        "next_delay": None,
    }
    webhooks_repo.record_attempt(recorder, attempt)
    webhooks_repo.record_attempts(recorder, [attempt, attempt])
    assert len(recorder.statements) == 13
    with ctx.db.connection() as conn:
        for query, params in recorder.statements:
            used = indexes_used(conn, query, params)
            assert not used & DUE_INDEXES, (query, used)
            assert not any(name.startswith("seq:") for name in used), (query, used)
            assert used & {"payments_pkey", "refunds_pkey", "webhook_logs_pkey"}, (query, used)
