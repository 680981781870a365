"""Request id, merchant authentication, and JSON bodies that can never crash a handler."""

from __future__ import annotations

import re
import secrets
from typing import Any

import falcon
import orjson

from ..errors import AuthenticationFailed, BadRequest, PayloadTooLarge, UnsupportedMediaType
from ..services import Context, merchants

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
JSON_TYPES = ("application/json", "application/x-www-form-urlencoded")


class RequestIdMiddleware:
    """``Request-Id`` on every response: a valid incoming one is echoed, else a new one."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("Request-Id") or req.get_header("X-Request-Id")
        if incoming and REQUEST_ID.match(incoming):
            req.context.request_id = incoming
        else:
            req.context.request_id = "req_" + secrets.token_hex(12)
        resp.set_header("Request-Id", req.context.request_id)


class AuthMiddleware:
    """Resources with ``auth = True`` get ``req.context.merchant`` or a 401."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def process_resource(self, req, resp, resource, params) -> None:
        if req.method == "OPTIONS" or not getattr(resource, "auth", False):
            return
        req.context.merchant = merchants.authenticate(
            self.ctx, req.get_header("X-Api-Key"), req.get_header("X-Api-Secret")
        )


def read_body(req: falcon.Request, limit: int) -> bytes:
    length = req.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(limit)
    data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(limit)
    return data


def json_body(req: falcon.Request, limit: int, *, required: bool = True) -> Any:
    """The parsed JSON body (cached on the request). Empty body: ``{}`` unless required."""
    if hasattr(req.context, "json"):
        return req.context.json
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    raw = read_body(req, limit)
    req.context.raw_body = raw
    if not raw.strip():
        if required:
            raise BadRequest("Request body must be a JSON object")
        req.context.json = {}
        return req.context.json
    if content_type and content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise UnsupportedMediaType()
    try:
        req.context.json = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Request body is not valid JSON") from None
    return req.context.json


def merchant_of(req: falcon.Request) -> dict[str, Any]:
    merchant = getattr(req.context, "merchant", None)
    if merchant is None:  # a resource forgot ``auth = True``: fail closed
        raise AuthenticationFailed()
    return merchant
