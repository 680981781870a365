"""Many payments at once, written straight to the record (one statement per table), for tests
of what lists, filters and exports them: hundreds in well under a second, where the services
would take one transaction each. Rows are what the services write, minus the events."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from paygate.services import ids
from tests.fixtures import AUTH

STATUSES = ("success", "success", "failed", "pending")
METHODS = ("upi", "card")


@dataclass
class Row:
    """One payment to write; unset fields take the services' values."""

    amount: int
    created_at: datetime
    status: str = "success"
    method: str = "upi"
    vpa: str | None = None
    card_last4: str | None = None
    card_network: str | None = None
    error_code: str | None = None
    order_id: str = field(default_factory=ids.order_id)
    id: str = field(default_factory=ids.payment_id)

    def __post_init__(self):
        if self.method == "upi" and self.vpa is None:
            self.vpa = "user@paytm"
        if self.method == "card" and self.card_last4 is None:
            self.card_last4, self.card_network = "1111", "visa"
        if self.status == "failed" and self.error_code is None:
            self.error_code = "PAYMENT_FAILED"


def varied(count: int, now: datetime, days: int = 6, seed: int = 19) -> list[Row]:
    """``count`` payments spread over the last ``days`` days with varied status, method and
    amount (seeded: the same rows every run)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        method = rng.choice(METHODS)
        rows.append(
            Row(
                amount=rng.randrange(100, 500_000),
                created_at=now - timedelta(days=rng.randrange(days), seconds=rng.randrange(86400)),
                status=rng.choice(STATUSES),
                method=method,
                vpa=rng.choice(("user@paytm", "shop@okaxis", "Buyer@ybl"))
                if method == "upi"
                else None,
                card_last4=rng.choice(("1111", "4242", "0005")) if method == "card" else None,
                card_network="visa" if method == "card" else None,
            )
        )
    return rows


def insert(ctx, merchant_id: str, rows: list[Row]) -> list[Row]:
    """Write the orders and payments of ``rows`` for ``merchant_id``. Pending ones are not due
    for a day, so no worker or janitor settles them behind the test's back."""
    with ctx.db.transaction() as conn:
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO orders (id, merchant_id, amount, status, created_at, updated_at)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                [
                    (
                        r.order_id,
                        merchant_id,
                        max(r.amount, 100),
                        "paid" if r.status == "success" else "created",
                        r.created_at,
                        r.created_at,
                    )
                    for r in rows
                ],
            )
            cur.executemany(
                """INSERT INTO payments (id, order_id, merchant_id, amount, currency, method,
                       status, vpa, card_network, card_last4, error_code, created_at, updated_at,
                       next_check_at, settled_at)
                   VALUES (%s, %s, %s, %s, 'INR', %s, %s, %s, %s, %s, %s, %s, %s,
                           now() + interval '1 day',
                           CASE WHEN %s = 'pending' THEN NULL ELSE %s END)""",
                [
                    (
                        r.id,
                        r.order_id,
                        merchant_id,
                        r.amount,
                        r.method,
                        r.status,
                        r.vpa,
                        r.card_network,
                        r.card_last4,
                        r.error_code,
                        r.created_at,
                        r.created_at,
                        r.status,
                        r.created_at,
                    )
                    for r in rows
                ],
            )
    return rows


def newest_first(rows: list[Row]) -> list[str]:
    """The ids of ``rows`` in the lists' order: newest first, then by id (descending)."""
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


def api_list(api, query: str = "", headers: dict | None = None) -> list[str]:
    """Every id ``GET /api/v1/payments?<query>`` lists (``api``: the in-process API), through
    all its pages of 100: what a client's list_all would collect."""
    found, offset = [], 0
    while True:
        answer = api.simulate_get(
            f"/api/v1/payments?{query}&limit=100&offset={offset}", headers=headers or AUTH
        )
        assert answer.status_code == 200, answer.text
        found += [p["id"] for p in answer.json["data"]]
        offset += 100
        if offset >= answer.json["total"]:
            return found
