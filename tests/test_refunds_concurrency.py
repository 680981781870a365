"""Never a paisa too much: concurrent refunds on one payment, against real PostgreSQL.

The service serializes refunds on the payment row; the database refuses an over-refund on its
own (a guarded reservation, backed by a CHECK constraint), so no interleaving can exceed the
amount paid.
"""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest

from paygate.db import connect
from paygate.db import refunds as refunds_repo
from paygate.db.outbox import event_params
from paygate.errors import REFUND_EXCEEDS_AVAILABLE, BadRequest
from paygate.services import refunds
from paygate.services.idempotency import NO_TOKEN
from tests.fixtures import wait_for
from tests.test_refunds import paid_payment

THREADS = 50
ROUNDS = 20
PAYMENT_AMOUNT = 10000


def refunded_state(ctx, payment_id: str) -> tuple[int, int, int]:
    """(payment.amount_refunded, sum of pending+processed refund rows, number of rows)."""
    with ctx.db.connection() as conn:
        row = conn.execute(
            """SELECT p.amount_refunded,
                      coalesce(sum(r.amount) FILTER (WHERE r.status <> 'failed'), 0) AS rows_sum,
                      count(r.id) AS n
                 FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id
                WHERE p.id = %s GROUP BY p.amount_refunded""",
            (payment_id,),
        ).fetchone()
    return row["amount_refunded"], int(row["rows_sum"]), row["n"]


def test_fifty_concurrent_refunds_never_exceed_the_payment_amount(ctx, api, test_merchant):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    payment_ids = [paid_payment(ctx, api, amount=PAYMENT_AMOUNT)["id"] for _ in range(ROUNDS)]

    with ThreadPoolExecutor(THREADS) as pool:
        for round_no, payment_id in enumerate(payment_ids):
            amounts = [rng.randint(1, 1500) for _ in range(THREADS)]
            start = threading.Barrier(THREADS)

            def attempt(amount: int, payment_id=payment_id, start=start) -> tuple[int, bool]:
                start.wait()
                try:
                    refunds.create(ctx, test_merchant, payment_id, {"amount": amount})
                    return amount, True
                except BadRequest as exc:
                    assert exc.description == REFUND_EXCEEDS_AVAILABLE
                    return amount, False

            results = list(pool.map(attempt, amounts))
            accepted = [amount for amount, ok in results if ok]
            rejected = [amount for amount, ok in results if not ok]
            where = f"round {round_no}, seed {seed}, amounts {amounts}"
            total = sum(accepted)
            assert total <= PAYMENT_AMOUNT, where
            assert refunded_state(ctx, payment_id) == (total, total, len(accepted)), where
            # Each refusal happened when less than its amount was left, and what is left now
            # is no more than what was left then: a refusal for any other reason would show.
            assert all(amount > PAYMENT_AMOUNT - total for amount in rejected), where
            assert rejected, where  # 50 draws averaging 750 paise must overflow 10000


def test_a_second_refund_waits_for_the_first_and_then_sees_what_is_left(
    ctx, api, test_merchant, database_url
):
    payment_id = paid_payment(ctx, api, amount=PAYMENT_AMOUNT)["id"]
    holder = psycopg.connect(database_url, autocommit=False)
    try:
        holder.execute("SELECT 1 FROM payments WHERE id = %s FOR UPDATE", (payment_id,))
        holder.execute(
            "UPDATE payments SET amount_refunded = amount_refunded + 8000 WHERE id = %s",
            (payment_id,),
        )
        outcome: list = []
        racer = threading.Thread(
            target=lambda: outcome.append(_try_refund(ctx, test_merchant, payment_id, 5000))
        )
        racer.start()
        wait_for(
            lambda: _someone_waits_on_a_lock(database_url),
            message="the second refund did not wait for the payment row",
        )
        assert outcome == []
        holder.commit()
        racer.join(10)
    finally:
        holder.close()
    assert outcome == [REFUND_EXCEEDS_AVAILABLE]
    assert refunded_state(ctx, payment_id) == (8000, 0, 0)


def _try_refund(ctx, merchant, payment_id: str, amount: int) -> str:
    try:
        return str(refunds.create(ctx, merchant, payment_id, {"amount": amount}).status)
    except BadRequest as exc:
        return exc.description


def _someone_waits_on_a_lock(database_url: str) -> bool:
    with connect(database_url) as conn:
        row = conn.execute(
            """SELECT count(*) AS n FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'"""
        ).fetchone()
    return row["n"] > 0


def _insert_params(merchant_id: str, payment_id: str, amount: int) -> dict:
    return {
        "payment_id": payment_id,
        "amount": amount,
        "reason": None,
        "created_at": datetime.now(UTC),
        **event_params(merchant_id, f"rfnd_{uuid.uuid4().hex[:16]}", []),
        **NO_TOKEN,
    }


def test_the_database_refuses_an_over_refund_even_without_the_service_checks(
    ctx, api, test_merchant
):
    payment_id = paid_payment(ctx, api, amount=PAYMENT_AMOUNT)["id"]
    merchant_id = test_merchant.id
    with ctx.db.transaction() as conn:
        created, _ = refunds_repo.insert(
            conn, _insert_params(merchant_id, payment_id, PAYMENT_AMOUNT - 1)
        )
        assert created
        created, _ = refunds_repo.insert(conn, _insert_params(merchant_id, payment_id, 2))
        assert not created
    assert refunded_state(ctx, payment_id) == (PAYMENT_AMOUNT - 1, PAYMENT_AMOUNT - 1, 1)


def test_the_check_constraint_is_the_last_line_of_defence(ctx, api):
    payment_id = paid_payment(ctx, api, amount=PAYMENT_AMOUNT)["id"]
    with pytest.raises(psycopg.errors.CheckViolation), ctx.db.connection() as conn:
        conn.execute(
            "UPDATE payments SET amount_refunded = amount + 1 WHERE id = %s", (payment_id,)
        )
    assert refunded_state(ctx, payment_id) == (0, 0, 0)
