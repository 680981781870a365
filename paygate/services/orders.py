"""Orders: create, read, and the public view the checkout page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..db import orders as repo
from ..errors import NotFound
from . import Context, ids, validation, views
from .idempotency import Token, token_params


def create(
    ctx: Context, merchant: dict[str, Any], body: Any, token: Token | None = None
) -> dict[str, Any]:
    """Create an order; return its representation. One statement writes the order and, with an
    Idempotency-Key, the stored response."""
    values = validation.order_request(body)
    now = datetime.now(UTC)
    row = {
        "id": ids.order_id(),
        "merchant_id": merchant["id"],
        "status": "created",
        "created_at": now,
        "updated_at": now,
        **values,
    }
    view = views.order_view(row)
    with ctx.db.connection() as conn:
        repo.insert(conn, {**row, **token_params(token, 201, view)})
    return view


def get(ctx: Context, merchant: dict[str, Any], order_id: str) -> dict[str, Any]:
    """The merchant's order; another merchant's order is as missing as one that never was."""
    row = None
    if validation.plausible_id(order_id):
        with ctx.db.connection() as conn:
            row = repo.get(conn, order_id, merchant["id"])
    if row is None:
        raise NotFound.of("Order")
    return views.order_view(row)


def get_public(ctx: Context, order_id: str) -> dict[str, Any]:
    row = None
    if validation.plausible_id(order_id):
        with ctx.db.connection() as conn:
            row = repo.get_public(conn, order_id)
    if row is None:
        raise NotFound.of("Order")
    return views.order_public_view(row)


def merchant_id_of(ctx: Context, order_id: str) -> str:
    """The merchant an order belongs to (the public endpoints' idempotency scope)."""
    row = None
    if validation.plausible_id(order_id):
        with ctx.db.connection() as conn:
            row = repo.get(conn, order_id)
    if row is None:
        raise NotFound.of("Order")
    return str(row["merchant_id"])


def list_orders(ctx: Context, merchant: dict[str, Any], limit: Any, offset: Any) -> dict[str, Any]:
    """``{data, total, limit, offset}`` of the merchant's orders, newest first."""
    lim, off = validation.pagination(limit, offset)
    with ctx.db.connection() as conn:
        rows, total = repo.list_for_merchant(conn, merchant["id"], limit=lim, offset=off)
    return views.page([views.order_view(r) for r in rows], total, lim, off)
