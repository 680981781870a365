"""Thin resources: parse, call a service, answer. Shared helpers live here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon

from ...services import Context, idempotency
from ...services.idempotency import Answer, Token
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
        scope: str,
        create: Callable[[Merchant, Any, Token | None], T],
        view: Callable[[T], dict[str, Any]],
        *,
        target: str | None = None,
    ) -> None:
        """The signed-in merchant's creating POST: ``create(merchant, body, token)`` run once per
        Idempotency-Key in ``scope`` (see ``services.idempotency.run``), answered 201 with
        ``view`` of what it created."""
        merchant = merchant_of(req)
        body = self.body(req)
        answer = idempotency.run(
            self.ctx,
            merchant.id,
            scope,
            req.get_header("Idempotency-Key"),
            body,
            lambda token: view(create(merchant, body, token)),
            target=target,
        )
        send_answer(resp, answer)


def send(resp: falcon.Response, view: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = compact_json(view)


def send_answer(resp: falcon.Response, answer: Answer) -> None:
    """A creating request's answer; a replay says so with ``Idempotent-Replayed: true``."""
    resp.status = answer.status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = answer.body
    if answer.replayed:
        resp.set_header("Idempotent-Replayed", "true")
