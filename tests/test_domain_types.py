"""The typed domain: merchants, orders and webhook logs are frozen dataclasses built by the
repositories; secrets never show in a repr; views are built from them at the edges."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from paygate.config import TEST_MERCHANT_ID
from paygate.db import merchants as merchants_repo
from paygate.db import orders as orders_repo
from paygate.db import webhooks as webhooks_repo
from paygate.services import orders, views, webhooks
from paygate.types import (
    DeliveryStatus,
    Merchant,
    Money,
    Order,
    OrderStatus,
    WebhookAttempt,
    WebhookLog,
)
from paygate.web.formatting import iso, money, timestamp
from tests.fixtures import set_webhook_url

WEBHOOK_SECRET = "whsec_do_not_print_2"
PASSWORD_HASH = "scrypt$16384$8$1$salt$do_not_print_3"


def merchant(**changes) -> Merchant:
    values = dict(
        id=TEST_MERCHANT_ID,
        name="Shop",
        email="shop@example.com",
        api_key="key_test_shop",
        webhook_secret=WEBHOOK_SECRET,
        password_hash=PASSWORD_HASH,
    )
    return Merchant(**{**values, **changes})


def test_a_merchant_repr_never_shows_its_secrets():
    shown = repr(merchant()) + str(merchant()) + f"{merchant()!r}"
    for secret in (WEBHOOK_SECRET, PASSWORD_HASH):
        assert secret not in shown
    assert "key_test_shop" in shown and "shop@example.com" in shown  # the rest is there
    assert merchant().webhook_secret == WEBHOOK_SECRET  # read by name where it is needed
    # The API secret is not part of a merchant at all: only a keyed hash of it is stored.
    assert not hasattr(merchant(), "api_secret")


def test_a_merchant_in_a_container_or_a_traceback_hides_its_secrets_too():
    shown = repr({"cached": (1.0, merchant())}) + repr([merchant()])
    for secret in (WEBHOOK_SECRET, PASSWORD_HASH):
        assert secret not in shown


def test_domain_types_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        merchant().webhook_secret = "changed"  # type: ignore[misc]
    order = Order("order_x", TEST_MERCHANT_ID, 100, "INR", OrderStatus.CREATED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.status = OrderStatus.PAID  # type: ignore[misc]


def test_has_password_says_whether_a_hash_is_set():
    assert merchant().has_password and not merchant(password_hash=None).has_password


def test_a_webhook_log_repr_leaves_out_the_payload_and_the_answer():
    log = WebhookLog(
        id="l", merchant_id="m", event="payment.success", status=DeliveryStatus.PENDING,
        body='{"card_last4":"4242"}', response_body="server said hello",
    )  # fmt: skip
    assert "4242" not in repr(log) and "hello" not in repr(log)


def test_money_has_one_format_for_both_web_apps():
    assert str(Money(123456)) == money(123456) == "₹1,234.56"
    assert money(5) == "₹0.05" and money(199, "USD") == "$1.99" and money(-500) == "-₹5.00"
    assert money(1000, "JPY") == "JPY 10.00" and money(None) == "₹0.00"


def test_moments_have_one_wire_format_and_one_display_format():
    moment = datetime(2024, 1, 15, 10, 31, 0, 999, tzinfo=UTC)
    assert views.iso(moment) == iso(moment) == "2024-01-15T10:31:00Z"
    assert timestamp(moment) == "2024-01-15 10:31:00"
    assert views.iso(None) is None and iso(None) == "" and timestamp(None) == "—"


def test_the_order_view_is_the_contract_shape():
    now = datetime(2024, 1, 15, 10, 31, tzinfo=UTC)
    order = Order("order_x", "m", 50000, "INR", OrderStatus.CREATED, created_at=now, updated_at=now)
    assert views.order_view(order) == {
        "id": "order_x",
        "merchant_id": "m",
        "amount": 50000,
        "currency": "INR",
        "receipt": None,
        "notes": {},
        "status": "created",
        "created_at": "2024-01-15T10:31:00Z",
        "updated_at": "2024-01-15T10:31:00Z",
    }
    assert views.order_public_view(order, "Shop") == {
        "id": "order_x",
        "amount": 50000,
        "currency": "INR",
        "status": "created",
        "merchant_name": "Shop",
    }


# -- the repositories build them ---------------------------------------------------------------


def test_the_merchant_repository_builds_merchants(ctx, test_merchant):
    assert isinstance(test_merchant, Merchant) and test_merchant.id == TEST_MERCHANT_ID
    assert "secret_test_xyz789" not in repr(test_merchant)
    assert isinstance(test_merchant.created_at, datetime)
    with ctx.db.connection() as conn:
        by_key = merchants_repo.by_credentials(conn, test_merchant.api_key)
        by_email = merchants_repo.by_email(conn, test_merchant.email.upper())
        updated = merchants_repo.update_webhook_secret(conn, test_merchant.id, "whsec_new")
    assert by_key == by_email == test_merchant
    assert updated.webhook_secret == "whsec_new" and updated.id == test_merchant.id


def test_the_order_repository_builds_orders(ctx, test_merchant, other_merchant):
    created = orders.create(ctx, test_merchant, {"amount": 50000, "notes": {"k": "v"}})
    with ctx.db.connection() as conn:
        mine = orders_repo.get(conn, created.id, test_merchant.id)
        theirs = orders_repo.get(conn, created.id, other_merchant.id)
        public = orders_repo.get_public(conn, created.id)
        items, total = orders_repo.list_for_merchant(conn, test_merchant.id, limit=10, offset=0)
    assert isinstance(mine, Order) and mine.status == OrderStatus.CREATED
    assert (mine.id, mine.amount, mine.notes, mine.money) == (
        created.id, 50000, {"k": "v"}, Money(50000),
    )  # fmt: skip
    assert theirs is None
    assert public == (mine, test_merchant.name)
    assert items == [mine] and total == 1


def test_the_webhook_repository_builds_logs_with_their_attempts(ctx, test_merchant):
    set_webhook_url(ctx, "http://127.0.0.1:9/nowhere")  # refused at once: one failed attempt
    log_id = webhooks.send_test(ctx, test_merchant)["id"]
    webhooks.deliver(ctx, log_id)
    listing = webhooks.list_logs(ctx, test_merchant)
    (listed,) = listing.items
    assert isinstance(listed, WebhookLog) and listed.id == log_id and listed.body is None
    assert listed.status == DeliveryStatus.PENDING and listed.attempts == 1
    full = webhooks.detail(ctx, test_merchant, log_id)
    assert full.event == "webhook.test" and '"webhook.test"' in full.body
    (attempt,) = full.attempt_log
    assert isinstance(attempt, WebhookAttempt) and attempt.attempt == 1
    assert attempt.url == "http://127.0.0.1:9/nowhere" and isinstance(
        attempt.attempted_at, datetime
    )
    with ctx.db.connection() as conn:  # a test event is about no resource: give it one
        conn.execute("UPDATE webhook_logs SET resource_id = 'pay_x' WHERE id = %s", (log_id,))
        (by_resource,) = webhooks_repo.for_resources(conn, test_merchant.id, ["pay_x"])
    assert by_resource.attempt_log == full.attempt_log
    assert views.webhook_log_view(full) == views.webhook_log_view(listed)
