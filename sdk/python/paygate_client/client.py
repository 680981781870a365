"""The ``Paygate`` client: one ``requests.Session``, retries with back-off, automatic
Idempotency-Keys, and the resources ``orders``, ``payments``, ``refunds``, ``webhooks`` and
``events``."""

from __future__ import annotations

import builtins
import os
import platform
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import requests
from urllib3.exceptions import NewConnectionError

from ._version import __version__
from .errors import APIConnectionError, PaygateError, WaitTimeoutError, error_from_response
from .models import (
    EventFeed,
    Order,
    Page,
    Payment,
    Refund,
    WebhookConfig,
    WebhookEndpoint,
    WebhookLog,
)

__all__ = ["Paygate", "DEFAULT_BASE_URL", "USER_AGENT"]

DEFAULT_BASE_URL = "http://localhost:8000"
USER_AGENT = f"paygate-client/{__version__} python/{platform.python_version()}"
# Answers worth asking again: the server may take the request a moment later.
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}
# Answers that say nothing was done (a limiter or an unavailable dependency refused before
# anything was written, contract section 9 and docs/api.md "Errors"): safe to send again
# whatever the method.
NOTHING_DONE_STATUSES = {429, 503}
IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "DELETE"}
LIST_PAGE_SIZE = 100


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the API sends integer seconds); None if absent or a date."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _never_reached(error: requests.RequestException) -> bool:
    """True when the request surely never reached the server: no connection was made."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = getattr(error.args[0] if error.args else None, "reason", None)
        return isinstance(reason, NewConnectionError)
    return False


class Paygate:
    """A client of one merchant's Paygate API.

    ``api_key``, ``api_secret`` and ``base_url`` default to the environment variables
    ``PAYGATE_API_KEY``, ``PAYGATE_API_SECRET`` and ``PAYGATE_API_URL`` (then
    ``http://localhost:8000``). ``timeout`` bounds each HTTP request (seconds);
    ``max_retries`` is how many times a failed request is sent again (0: never).
    ``sleep`` is the function that waits between attempts (tests pass their own).
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 60.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        api_key = api_key if api_key is not None else os.environ.get("PAYGATE_API_KEY")
        api_secret = api_secret if api_secret is not None else os.environ.get("PAYGATE_API_SECRET")
        if not api_key or not api_secret:
            raise ValueError(
                "Paygate needs an API key and secret: pass api_key= and api_secret=, or set "
                "PAYGATE_API_KEY and PAYGATE_API_SECRET"
            )
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.api_key = api_key
        self._api_secret = api_secret
        self.base_url = (base_url or os.environ.get("PAYGATE_API_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._session = session or requests.Session()
        self.orders = Orders(self)
        self.payments = Payments(self)
        self.refunds = Refunds(self)
        self.webhooks = Webhooks(self)
        self.events = Events(self)

    def __repr__(self) -> str:
        return f"Paygate(api_key={self.api_key!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Paygate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the transport ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Send one API request (``path`` such as ``/api/v1/orders``) with the credentials,
        retries and error mapping of the rest of the client; the parsed JSON answer.
        ``idempotency_key`` is sent as ``Idempotency-Key`` (none is made up here)."""
        return self._request(method, path, json=json, params=params, key=idempotency_key)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return float(min(retry_after, self.max_retry_after))
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        return ceiling * (0.5 + random.random() / 2)  # jitter: 50-100 % of the ceiling

    def _request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        method = method.upper()
        headers = {
            "X-Api-Key": self.api_key,
            "X-Api-Secret": self._api_secret,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if key is not None:
            headers["Idempotency-Key"] = key  # the same on every attempt of this call
        # Safe to send twice: reads and deletes, or a create the server deduplicates by key.
        repeatable = method in IDEMPOTENT_METHODS or key is not None
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.base_url + (path if path.startswith("/") else "/" + path)
        attempt = 0
        while True:
            try:
                response = self._session.request(
                    method,
                    url,
                    json=json,
                    params=query,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                if attempt < self.max_retries and (repeatable or _never_reached(exc)):
                    self._sleep(self._backoff(attempt, None))
                    attempt += 1
                    continue
                raise APIConnectionError(
                    "CONNECTION_ERROR",
                    f"{method} {path}: no answer from {self.base_url} ({type(exc).__name__}: "
                    f"{exc})",
                ) from exc
            if response.status_code < 400:
                return self._json(response)
            retry_after = _retry_after(response.headers.get("Retry-After"))
            error = error_from_response(
                response.status_code,
                self._json_or_none(response),
                response.text,
                response.headers.get("Request-Id"),
                retry_after,
            )
            status = response.status_code
            if status in NOTHING_DONE_STATUSES:
                retriable = True
            elif status == 409:  # the key's first request is still in flight: replay later
                retriable = key is not None
            else:
                retriable = status in RETRY_STATUSES and repeatable
            if attempt < self.max_retries and retriable:
                self._sleep(self._backoff(attempt, retry_after))
                attempt += 1
                continue
            raise error

    @staticmethod
    def _json_or_none(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def _json(self, response: requests.Response) -> dict[str, Any]:
        body = self._json_or_none(response)
        if not isinstance(body, dict):
            raise PaygateError(
                "INVALID_RESPONSE",
                f"expected a JSON object, got {response.text[:200]!r}",
                http_status=response.status_code,
                request_id=response.headers.get("Request-Id"),
            )
        return body


def _new_key() -> str:
    return str(uuid.uuid4())


_Waited = TypeVar("_Waited", Payment, Refund)


def _wait(
    fetch: Callable[[], _Waited],
    what: str,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None],
) -> _Waited:
    deadline = time.monotonic() + timeout
    while True:
        current = fetch()
        if current.status != "pending":
            return current
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeoutError(f"{what} still pending after {timeout:g} s", current)
        sleep(min(interval, remaining))


class _Resource:
    def __init__(self, client: Paygate) -> None:
        self._client = client


class Orders(_Resource):
    def create(
        self,
        amount: int,
        currency: str = "INR",
        receipt: str | None = None,
        notes: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """``POST /api/v1/orders``; ``amount`` in paise (an int, at least 100)."""
        body: dict[str, Any] = {"amount": amount, "currency": currency}
        if receipt is not None:
            body["receipt"] = receipt
        if notes is not None:
            body["notes"] = dict(notes)
        data = self._client._request(
            "POST", "/api/v1/orders", json=body, key=idempotency_key or _new_key()
        )
        return Order.from_dict(data)

    def get(self, order_id: str) -> Order:
        return Order.from_dict(self._client._request("GET", f"/api/v1/orders/{_id(order_id)}"))


def _id(value: str) -> str:
    """An id for a URL path: refused when it could change the path."""
    if not isinstance(value, str) or not value or any(c in value for c in "/?#%\\ "):
        raise ValueError(f"not an id: {value!r}")
    return value


def _paged(
    client: Paygate, path: str, make: Callable[[Mapping[str, Any]], Any], params: dict[str, Any]
) -> Page[Any]:
    data = client._request("GET", path, params=params)
    return Page(
        data=[make(item) for item in data.get("data") or []],
        total=int(data.get("total", 0)),
        limit=_opt_int(data.get("limit")),
        offset=_opt_int(data.get("offset")),
        raw=data,
    )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _iterate(fetch: Callable[[int, int], Page[Any]], page_size: int) -> Iterator[Any]:
    """Every item, page after page. Lists are newest first: an object created meanwhile shifts
    the pages by one, so an id already yielded is skipped rather than yielded twice."""
    if not 1 <= page_size <= LIST_PAGE_SIZE:
        raise ValueError(f"page_size must be 1-{LIST_PAGE_SIZE}")
    seen = set()
    offset = 0
    while True:
        page = fetch(page_size, offset)
        for item in page.data:
            if item.id not in seen:
                seen.add(item.id)
                yield item
        offset += len(page.data)
        if not page.data or offset >= page.total:
            return


def _filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Query values as the API reads them: datetimes as ISO-8601, the rest as given."""
    out: dict[str, Any] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        out[name] = value
    return out


class Payments(_Resource):
    def create(
        self,
        order_id: str,
        method: str,
        vpa: str | None = None,
        card: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """``POST /api/v1/payments``: ``method="upi"`` with ``vpa``, or ``method="card"`` with
        ``card={number, expiry_month, expiry_year, cvv, holder_name}``. Answers at once with a
        ``pending`` payment; ``wait`` for the outcome."""
        body: dict[str, Any] = {"order_id": order_id, "method": method}
        if vpa is not None:
            body["vpa"] = vpa
        if card is not None:
            body["card"] = dict(card)
        data = self._client._request(
            "POST", "/api/v1/payments", json=body, key=idempotency_key or _new_key()
        )
        return Payment.from_dict(data)

    def get(self, payment_id: str) -> Payment:
        return Payment.from_dict(
            self._client._request("GET", f"/api/v1/payments/{_id(payment_id)}")
        )

    def list(
        self,
        limit: int = 10,
        offset: int = 0,
        *,
        status: str | None = None,
        method: str | None = None,
        order_id: str | None = None,
        from_: Any = None,
        to: Any = None,
        search: str | None = None,
        amount_min: int | None = None,
        amount_max: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Page[Payment]:
        """One page, newest first, of the payments every given filter matches (docs/api.md,
        "Payments"): ``status``, ``method``, ``order_id``, ``from_`` / ``to`` (a datetime,
        unix seconds or ISO-8601 text; ``from_`` because ``from`` is a Python keyword),
        ``search`` and ``amount_min`` / ``amount_max`` (paise, inclusive). The filters are
        keyword arguments so a misspelt one is a ``TypeError``, not a silently wider list;
        ``extra`` passes query parameters this client does not know yet, as they are."""
        filters = {
            "status": status,
            "method": method,
            "order_id": order_id,
            "from": from_,
            "to": to,
            "search": search,
            "amount_min": amount_min,
            "amount_max": amount_max,
        }
        params = {**_filters(extra or {}), "limit": limit, "offset": offset, **_filters(filters)}
        return _paged(self._client, "/api/v1/payments", Payment.from_dict, params)

    def list_all(
        self,
        page_size: int = LIST_PAGE_SIZE,
        *,
        status: str | None = None,
        method: str | None = None,
        order_id: str | None = None,
        from_: Any = None,
        to: Any = None,
        search: str | None = None,
        amount_min: int | None = None,
        amount_max: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Iterator[Payment]:
        """Every payment matching the filters (those of ``list``), newest first, fetched
        ``page_size`` (1-100) at a time as you iterate."""
        filters = {
            "status": status,
            "method": method,
            "order_id": order_id,
            "from_": from_,
            "to": to,
            "search": search,
            "amount_min": amount_min,
            "amount_max": amount_max,
            "extra": extra,
        }
        return _iterate(
            lambda limit, offset: self.list(limit=limit, offset=offset, **filters), page_size
        )

    def capture(self, payment_id: str, amount: int | None = None) -> Payment:
        """Capture a ``success`` payment, all of it or ``amount`` paise. An answer of 202
        (processor outcome unknown) is a payment with ``capture_status == "pending"``."""
        body = {} if amount is None else {"amount": amount}
        data = self._client._request(
            "POST", f"/api/v1/payments/{_id(payment_id)}/capture", json=body
        )
        return Payment.from_dict(data)

    def release(self, payment_id: str, idempotency_key: str | None = None) -> Payment:
        """Give back an uncaptured authorization (``released_at`` set)."""
        data = self._client._request(
            "POST",
            f"/api/v1/payments/{_id(payment_id)}/release",
            key=idempotency_key or _new_key(),
        )
        return Payment.from_dict(data)

    def wait(self, payment_id: str, timeout: float = 30.0, interval: float = 0.5) -> Payment:
        """Read the payment every ``interval`` seconds until it is not ``pending``; raises
        ``WaitTimeoutError`` (with ``.last``) after ``timeout`` seconds."""
        return _wait(
            lambda: self.get(payment_id),
            f"payment {payment_id}",
            timeout,
            interval,
            self._client._sleep,
        )


class Refunds(_Resource):
    def create(
        self,
        payment_id: str,
        amount: int,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """``POST /api/v1/payments/{id}/refunds``: ``amount`` paise of a ``success`` payment."""
        body: dict[str, Any] = {"amount": amount}
        if reason is not None:
            body["reason"] = reason
        data = self._client._request(
            "POST",
            f"/api/v1/payments/{_id(payment_id)}/refunds",
            json=body,
            key=idempotency_key or _new_key(),
        )
        return Refund.from_dict(data)

    def get(self, refund_id: str) -> Refund:
        return Refund.from_dict(self._client._request("GET", f"/api/v1/refunds/{_id(refund_id)}"))

    def wait(self, refund_id: str, timeout: float = 30.0, interval: float = 0.5) -> Refund:
        """Read the refund until it is not ``pending`` (``processed``, or refused)."""
        return _wait(
            lambda: self.get(refund_id),
            f"refund {refund_id}",
            timeout,
            interval,
            self._client._sleep,
        )


class WebhookEndpoints(_Resource):
    """Further webhook endpoints besides the primary ``webhook_url`` (docs/webhooks.md,
    "Several endpoints")."""

    PATH = "/api/v1/webhooks/endpoints"

    def list(self) -> Page[WebhookEndpoint]:
        data = self._client._request("GET", self.PATH)
        items = [WebhookEndpoint.from_dict(item) for item in data.get("data") or []]
        return Page(data=items, total=int(data.get("total", len(items))), raw=data)

    def create(
        self,
        url: str,
        events: builtins.list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        """A new endpoint; its ``secret`` is in this answer only (keep it)."""
        body: dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = list(events)
        if description is not None:
            body["description"] = description
        if enabled is not None:
            body["enabled"] = enabled
        data = self._client._request(
            "POST", self.PATH, json=body, key=idempotency_key or _new_key()
        )
        return WebhookEndpoint.from_dict(data)

    def get(self, endpoint_id: str) -> WebhookEndpoint:
        return WebhookEndpoint.from_dict(
            self._client._request("GET", f"{self.PATH}/{_id(endpoint_id)}")
        )

    _UNSET: Any = object()

    def update(
        self,
        endpoint_id: str,
        url: str | None = None,
        events: builtins.list[str] | None = None,
        description: Any = _UNSET,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Change what is given; ``description=None`` clears the description."""
        body: dict[str, Any] = {}
        if url is not None:
            body["url"] = url
        if events is not None:
            body["events"] = list(events)
        if description is not self._UNSET:
            body["description"] = description
        if enabled is not None:
            body["enabled"] = enabled
        data = self._client._request("PATCH", f"{self.PATH}/{_id(endpoint_id)}", json=body)
        return WebhookEndpoint.from_dict(data)

    def delete(self, endpoint_id: str) -> dict[str, Any]:
        """``{"id": ..., "deleted": True}``."""
        return self._client._request("DELETE", f"{self.PATH}/{_id(endpoint_id)}")

    def rotate_secret(self, endpoint_id: str) -> WebhookEndpoint:
        """The endpoint with its new ``secret`` (this once) and ``previous_secret_until``."""
        data = self._client._request("POST", f"{self.PATH}/{_id(endpoint_id)}/rotate-secret")
        return WebhookEndpoint.from_dict(data)

    def test(self, endpoint_id: str) -> dict[str, Any]:
        """Send a ``webhook.test`` to this endpoint only (202)."""
        return self._client._request("POST", f"{self.PATH}/{_id(endpoint_id)}/test")


class Webhooks(_Resource):
    def __init__(self, client: Paygate) -> None:
        super().__init__(client)
        self.endpoints = WebhookEndpoints(client)

    def get_config(self) -> WebhookConfig:
        return WebhookConfig.from_dict(self._client._request("GET", "/api/v1/webhooks/config"))

    def set_url(self, url: str | None) -> WebhookConfig:
        """Set the primary ``webhook_url`` (``None`` or ``""`` clears it)."""
        data = self._client._request("POST", "/api/v1/webhooks/config", json={"webhook_url": url})
        return WebhookConfig.from_dict(data)

    def rotate_secret(self) -> WebhookConfig:
        """A new merchant secret, signing every delivery from now on. A previous ``whsec_`` +
        base64 secret keeps signing ``webhook-signature`` beside it for the overlap window;
        ``X-Webhook-Signature`` switches at once (docs/webhooks.md, "Rotating the secret")."""
        data = self._client._request(
            "POST", "/api/v1/webhooks/config", json={"regenerate_secret": True}
        )
        return WebhookConfig.from_dict(data)

    def test(self) -> dict[str, Any]:
        """Send a ``webhook.test`` event to the primary endpoint (202)."""
        return self._client._request("POST", "/api/v1/webhooks/test")

    def list(self, limit: int = 10, offset: int = 0) -> Page[WebhookLog]:
        """Delivery logs, newest first."""
        params = {"limit": limit, "offset": offset}
        return _paged(self._client, "/api/v1/webhooks", WebhookLog.from_dict, params)

    def list_all(self, page_size: int = LIST_PAGE_SIZE) -> Iterator[WebhookLog]:
        """Every delivery log, newest first, ``page_size`` (1-100) per request."""
        return _iterate(lambda limit, offset: self.list(limit=limit, offset=offset), page_size)

    def retry(self, webhook_id: str) -> dict[str, Any]:
        """Send a delivery again now (attempts start over)."""
        return self._client._request("POST", f"/api/v1/webhooks/{_id(webhook_id)}/retry")


class Events(_Resource):
    def feed(self, after: str | None = None, limit: int = 100) -> EventFeed:
        """``GET /api/v1/events/feed``: the events after the cursor ``after`` (without it: no
        events and the cursor of the log's head, to start from)."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return EventFeed.from_dict(
            self._client._request("GET", "/api/v1/events/feed", params=params)
        )
