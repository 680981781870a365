"""Not-found lookup: one way to read a record by id or answer the contract's 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import NotFound
from . import Context, validation

T = TypeVar("T")


def found(value: T | None, kind: str) -> T:
    """``value``, or ``NotFound`` ("<kind> not found") when there is none."""
    if value is None:
        raise NotFound.of(kind)
    return value


def lookup(ctx: Context, kind: str, record_id: str, read: Callable[[Any], T | None]) -> T:
    """``read(conn)`` for an id that could name a record; an implausible id, or nothing read,
    is ``NotFound`` without (or after) the query. Another merchant's record is read as None by
    the repositories, so it is as missing as one that never was."""
    value = None
    if validation.plausible_id(record_id):
        with ctx.db.connection() as conn:
            value = read(conn)
    return found(value, kind)
