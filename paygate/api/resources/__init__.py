"""Thin resources: parse, call a service, answer. Shared helpers live here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon
import orjson

from ...services import Context, idempotency
from ...services.idempotency import Replay, Token
from ...types import Merchant, T
from ...wire import compact_json
from ..middleware import json_body, merchant_of


class Resource:
    auth = False

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def body(self, req: falcon.Request, *, required: bool = True) -> Any:
        return json_body(req, self.ctx.settings.max_body_bytes, required=required)

    def create_for_merchant(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        create: Callable[[Merchant, Any, Token | None], T],
        view: Callable[[T], dict[str, Any]],
    ) -> None:
        """The signed-in merchant's creating POST: ``create(merchant, body, token)`` under the
        request's Idempotency-Key, answered 201 with ``view`` of what it created."""
        merchant = merchant_of(req)
        body = self.body(req)
        create_idempotently(
            self.ctx,
            req,
            resp,
            merchant.id,
            body,
            lambda token: view(create(merchant, body, token)),
        )


def send(resp: falcon.Response, view: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = compact_json(view)


def idempotent_fingerprint(method: str, path: str, body: Any) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path and the body
    as parsed JSON (key order and whitespace do not matter)."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return idempotency.request_hash(method, path, canonical)


def create_idempotently(
    ctx: Context,
    req: falcon.Request,
    resp: falcon.Response,
    merchant_id: str,
    body: Any,
    create: Callable[[Token | None], dict[str, Any]],
) -> None:
    """Run ``create`` under the request's Idempotency-Key (if any) and answer 201.

    A replay answers the stored status and bytes with ``Idempotent-Replayed: true``.
    """
    key = req.get_header("Idempotency-Key")
    if key is None:
        send(resp, create(None), 201)
        return
    fingerprint = idempotent_fingerprint(req.method, req.path, body)
    begun = idempotency.begin(ctx, str(merchant_id), key, fingerprint)
    if isinstance(begun, Replay):
        resp.status = begun.status
        resp.content_type = falcon.MEDIA_JSON
        resp.data = begun.body
        resp.set_header("Idempotent-Replayed", "true")
        return
    try:
        create(begun)
    except BaseException:
        idempotency.abandon(ctx, begun)
        raise
    resp.status = begun.code
    resp.content_type = falcon.MEDIA_JSON
    resp.data = begun.body
