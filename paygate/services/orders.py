"""Orders: create, read, list, and the public read the checkout page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..db import orders as repo
from ..types import Listing, Merchant, Order, OrderStatus
from . import Context, ids, validation, views
from .idempotency import Token, token_params
from .lookup import lookup


def create(ctx: Context, merchant: Merchant, body: Any, token: Token | None = None) -> Order:
    """Create an order. One statement writes the order and, with an Idempotency-Key, the stored
    response."""
    values = validation.order_request(body)
    now = datetime.now(UTC)
    values["notes"] = values.get("notes") or {}
    order = Order(
        ids.order_id(), merchant.id, status=OrderStatus.CREATED, created_at=now, updated_at=now,
        **values,
    )  # fmt: skip
    with ctx.db.connection() as conn:
        repo.insert(conn, order, token_params(token, 201, views.order_view(order)))
    return order


def get(ctx: Context, merchant: Merchant, order_id: str) -> Order:
    """The merchant's order; another merchant's order is as missing as one that never was."""
    return lookup(ctx, "Order", order_id, lambda conn: repo.get(conn, order_id, merchant.id))


def get_public(ctx: Context, order_id: str) -> tuple[Order, str]:
    """Any merchant's order and that merchant's name, for the checkout page."""
    return lookup(ctx, "Order", order_id, lambda conn: repo.get_public(conn, order_id))


def list_orders(ctx: Context, merchant: Merchant, limit: Any, offset: Any) -> Listing[Order]:
    """A page of the merchant's orders, newest first."""
    lim, off = validation.pagination(limit, offset)
    with ctx.db.connection() as conn:
        items, total = repo.list_for_merchant(conn, merchant.id, limit=lim, offset=off)
    return Listing(items, total, lim, off)
