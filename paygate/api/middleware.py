"""Request id, merchant authentication, and JSON bodies that can never crash a handler."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import falcon
import orjson

from .. import logcontext, metrics
from ..errors import (
    BODY_NOT_JSON,
    BODY_NOT_OBJECT,
    BODY_TOO_DEEP,
    AuthenticationFailed,
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ..services import Context, merchants
from ..types import Merchant

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Credentials are printable ASCII; anything else cannot match and must not reach SQL.
CREDENTIAL = re.compile(r"[\x21-\x7e]{1,64}")
# JSON bodies: application/json, any application/*+json, and curl -d's default form type.
JSON_TYPES = ("application/json", "application/x-www-form-urlencoded")
# No request of the contract nests deeper than 4; past this a body is refused (400) before any
# handler, validator or the Idempotency-Key fingerprint sees it (orjson writes at most 254
# levels, so a deeper body used to fail the fingerprint with a 500).
MAX_JSON_DEPTH = 32


class TransportSecurity:
    """``Strict-Transport-Security`` on every response, errors included, when ``header`` is set
    (production mode: ``Settings.strict_transport_security``); nothing otherwise."""

    def __init__(self, header: str | None):
        self.header = header

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, ok) -> None:
        if self.header:
            resp.set_header("Strict-Transport-Security", self.header)


class RequestMetrics:
    """``paygate_http_request_duration_seconds``: one observation per request, labelled with
    the route's template (``/api/v1/payments/{payment_id}``, never the path: ids would make
    the series unbounded; no route matched: ``unmatched``), the method and the status code.
    First in the chain, so its ``process_response`` runs last and sees the final status."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def __init__(self) -> None:
        # (route, method, status) -> the histogram's child: ``labels()`` costs a lock and a
        # label check per call, a dict lookup does not (bounded: routes x methods x statuses).
        self._children: dict[tuple[str, str, int], Any] = {}

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, ok) -> None:
        started = getattr(req.context, "started", None)
        if started is None:
            return
        method = req.method if req.method in KNOWN_METHODS else "other"
        key = (req.uri_template or metrics.UNMATCHED_ROUTE, method, resp.status_code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metrics.HTTP_REQUEST_SECONDS.labels(
                key[0], method, str(resp.status_code)
            )
        child.observe(time.perf_counter() - started)


KNOWN_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS", "HEAD"})


class RequestIdMiddleware:
    """``Request-Id`` on every response: a valid incoming one is echoed, else a new one. The
    id is also the log context of everything the request logs (``paygate.logcontext``)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("Request-Id") or req.get_header("X-Request-Id")
        if incoming and REQUEST_ID.fullmatch(incoming):
            req.context.request_id = incoming
        else:
            req.context.request_id = "req_" + secrets.token_hex(12)
        resp.set_header("Request-Id", req.context.request_id)
        logcontext.begin(request_id=req.context.request_id)

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params):
        if params:
            logcontext.add(**{k: v for k, v in params.items() if k in logcontext.FIELDS})

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, ok) -> None:
        logcontext.clear()


class AuthMiddleware:
    """Resources with ``auth = True`` get ``req.context.merchant`` or a 401."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def process_resource(self, req, resp, resource, params) -> None:
        if req.method == "OPTIONS" or not getattr(resource, "auth", False):
            return
        key, secret = req.get_header("X-Api-Key"), req.get_header("X-Api-Secret")
        if not (key and secret and CREDENTIAL.fullmatch(key) and CREDENTIAL.fullmatch(secret)):
            raise AuthenticationFailed()
        req.context.merchant = merchants.authenticate(self.ctx, key, secret)
        logcontext.add(merchant_id=req.context.merchant.id)


def read_body(req: falcon.Request, limit: int) -> bytes:
    length = req.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(limit)
    data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(limit)
    return data


def json_body(req: falcon.Request, limit: int, *, required: bool = True) -> Any:
    """The parsed JSON body (cached on the request). Empty body: ``{}`` unless required.

    Order of refusals: too large (413), a non-JSON content type (415), empty (400), not JSON
    (400), nested deeper than ``MAX_JSON_DEPTH`` (400)."""
    if hasattr(req.context, "json"):
        return req.context.json
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    raw = read_body(req, limit)
    req.context.raw_body = raw
    if content_type and content_type not in JSON_TYPES and not _is_json_suffix(content_type):
        raise UnsupportedMediaType()
    if not raw.strip():
        if required:
            raise BadRequest(BODY_NOT_OBJECT.format(what="Request body"))
        req.context.json = {}
        return req.context.json
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error):  # orjson's own limit (1024 levels)
            raise BadRequest(BODY_TOO_DEEP.format(limit=MAX_JSON_DEPTH)) from None
        raise BadRequest(BODY_NOT_JSON) from None
    # Cheap first: a body with few brackets cannot be deep (brackets in strings count too).
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and too_deep(parsed, MAX_JSON_DEPTH):
        raise BadRequest(BODY_TOO_DEEP.format(limit=MAX_JSON_DEPTH))
    req.context.json = parsed
    return parsed


def too_deep(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (the outermost is level 1).
    A loop, not recursion: the value may be as deep as the parser allows."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def _is_json_suffix(content_type: str) -> bool:
    """``application/<anything>+json`` (RFC 6839 structured syntax suffix)."""
    kind, _, subtype = content_type.partition("/")
    return kind == "application" and subtype.endswith("+json") and len(subtype) > 5


def merchant_of(req: falcon.Request) -> Merchant:
    merchant = getattr(req.context, "merchant", None)
    if merchant is None:  # a resource forgot ``auth = True``: fail closed
        raise AuthenticationFailed()
    return merchant


class CORSMiddleware(falcon.CORSMiddleware):
    """Falcon's CORS policy for the configured origins, plus ``Vary: Origin`` so that a cache
    never serves one origin's answer to another."""

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        super().process_response(req, resp, resource, req_succeeded)
        if self.allow_origins != "*":
            resp.append_header("Vary", "Origin")
