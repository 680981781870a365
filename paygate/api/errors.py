"""The contract's error envelope for every failure, and the one catch-all for the unexpected.

``{"error": {"code": CODE, "description": TEXT}}`` plus ``request_id`` (and ``field`` when a
field is to blame). Unexpected exceptions are logged with the request id and answer 500 without
internals.
"""

from __future__ import annotations

import logging

import falcon

from ..errors import INTERNAL_ERROR, METHOD_NOT_ALLOWED, URL_NOT_FOUND, PaygateError
from ..wire import compact_json

log = logging.getLogger("paygate.api")

# HTTP errors raised by Falcon itself (routing, parsing) mapped to contract codes.
_HTTP_CODES = {
    401: "AUTHENTICATION_ERROR",
    404: "NOT_FOUND_ERROR",
}
_HTTP_DESCRIPTIONS = {
    404: URL_NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
}


def envelope(code: str, description: str, req: falcon.Request | None, **extra) -> bytes:
    error = {"code": code, "description": description, **{k: v for k, v in extra.items() if v}}
    if req is not None and getattr(req.context, "request_id", None):
        error["request_id"] = req.context.request_id
    return compact_json({"error": error})


def _send(resp: falcon.Response, status: int, body: bytes) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = body
    resp.media = None


def handle_domain_error(req, resp, ex: PaygateError, params) -> None:
    if ex.status == 503:  # the database is away: the client may retry, and soon
        resp.set_header("Retry-After", "1")
    retry_after = getattr(ex, "retry_after", None)  # RateLimited (429)
    if retry_after is not None:
        resp.set_header("Retry-After", str(retry_after))
    reason = getattr(ex, "reason", None)  # a processor's decline code (ProcessorDeclined)
    _send(resp, ex.status, envelope(ex.code, ex.description, req, field=ex.field, reason=reason))


def handle_http_error(req, resp, ex: falcon.HTTPError, params) -> None:
    status = ex.status_code
    code = _HTTP_CODES.get(status, "BAD_REQUEST_ERROR" if status < 500 else "SERVER_ERROR")
    description = ex.description or _HTTP_DESCRIPTIONS.get(status) or ex.title or "Error"
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)
    _send(resp, status, envelope(code, description, req))


def handle_unexpected(req, resp, ex: Exception, params) -> None:
    request_id = getattr(req.context, "request_id", "-")
    log.exception("unhandled error on %s %s (request %s)", req.method, req.path, request_id)
    _send(resp, 500, envelope("SERVER_ERROR", INTERNAL_ERROR, req))


def install(app: falcon.App) -> None:
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(PaygateError, handle_domain_error)
