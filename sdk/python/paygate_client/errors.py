"""Exceptions: every API error carries the contract's ``code`` and ``description``.

``PaygateError`` is the base; catch a subclass to handle one kind of failure:

=========================  ===========================================================
AuthenticationError        401: missing or wrong API key/secret
InvalidRequestError        400, 405, 413, 415, 422 and other 4xx below; the method-field
                           codes INVALID_VPA, INVALID_CARD, EXPIRED_CARD
NotFoundError              404
ConflictError              409: the Idempotency-Key's first request is still in flight
RateLimitError             429: ``retry_after`` says how long to wait
ServiceUnavailableError    503: nothing was accepted; ``retry_after`` when the server said
APIError                   any other 5xx
APIConnectionError         no answer: refused connection, timeout, dropped connection
=========================  ===========================================================
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PaygateError",
    "AuthenticationError",
    "InvalidRequestError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "ServiceUnavailableError",
    "APIError",
    "APIConnectionError",
    "WaitTimeoutError",
    "error_from_response",
]


class PaygateError(Exception):
    """An error the API answered (or, for APIConnectionError, no answer at all).

    ``code`` and ``description`` come from the error envelope
    ``{"error": {"code", "description", "field"?, "reason"?, "request_id"}}``; ``reason`` is a
    processor's decline code; ``retry_after`` is the ``Retry-After`` header in seconds; ``body``
    the parsed JSON answer (or None when it was not JSON).
    """

    def __init__(
        self,
        code: str,
        description: str,
        http_status: int | None = None,
        request_id: str | None = None,
        field: str | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.http_status = http_status
        self.request_id = request_id
        self.field = field
        self.reason = reason
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        text = f"{self.code}: {self.description}"
        if self.http_status is not None:
            text = f"{text} (HTTP {self.http_status})"
        if self.request_id:
            text = f"{text} [request id {self.request_id}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, description={self.description!r}, "
            f"http_status={self.http_status!r}, request_id={self.request_id!r})"
        )


class AuthenticationError(PaygateError):
    """401: the API key and secret do not match an active merchant."""


class InvalidRequestError(PaygateError):
    """The request was refused as it stands (400, 413, 415, 422...); sending it again unchanged
    gets the same answer. ``field`` names the offending field when the API said."""


class NotFoundError(PaygateError):
    """404: no such object, or another merchant's."""


class ConflictError(PaygateError):
    """409: the Idempotency-Key's first request is still in flight (the client retries these
    itself), or a buyer's payment on the order is still pending."""


class RateLimitError(PaygateError):
    """429: over a limit; ``retry_after`` gives the seconds to wait."""


class ServiceUnavailableError(PaygateError):
    """503: the gateway (its database, or the merchant's processor) cannot take the request now;
    nothing was accepted."""


class APIError(PaygateError):
    """Any other 5xx: an unexpected failure on the server (quote ``request_id`` when asking)."""


class APIConnectionError(PaygateError):
    """No answer came: the connection was refused or dropped, or the timeout ran out. For a
    request that creates something, retrying with the same Idempotency-Key is safe."""


class WaitTimeoutError(TimeoutError):
    """``payments.wait`` / ``refunds.wait`` ran out of time; ``last`` is the object as last
    read (still pending; a payment may carry ``next_action``: the buyer must act)."""

    def __init__(self, message: str, last: Any) -> None:
        super().__init__(message)
        self.last = last


INVALID_REQUEST_CODES = {"INVALID_VPA", "INVALID_CARD", "EXPIRED_CARD"}


def _class_for(status: int, code: str) -> type[PaygateError]:
    if code in INVALID_REQUEST_CODES:
        return InvalidRequestError
    if status == 401:
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status == 429:
        return RateLimitError
    if status == 503:
        return ServiceUnavailableError
    if status >= 500:
        return APIError
    if 400 <= status < 500:
        return InvalidRequestError
    return PaygateError


def error_from_response(
    status: int, body: Any, text: str, request_id: str | None, retry_after: float | None
) -> PaygateError:
    """The exception for an error answer: its envelope when it has one, else the HTTP status
    (``HTTP_<status>``) and the first 200 characters of the text."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = error["code"]
        description = str(error.get("description", ""))
        request_id = error.get("request_id") or request_id
        field, reason = error.get("field"), error.get("reason")
    else:
        code, description = f"HTTP_{status}", (text or "").strip()[:200] or f"HTTP {status}"
        field = reason = None
    return _class_for(status, code)(
        code,
        description,
        http_status=status,
        request_id=request_id,
        field=field,
        reason=reason,
        retry_after=retry_after,
        body=body,
    )
