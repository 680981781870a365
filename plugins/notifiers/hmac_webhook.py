"""The ``webhook`` notifier: HTTP POST of the stored body, signed two ways, to a checked address.

- ``X-Webhook-Signature``: lowercase hex HMAC-SHA256 of the body, keyed with the UTF-8 bytes of
  the merchant's webhook secret (the compatible signature).
- Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64>``)
  whenever the secret is a valid Standard Webhooks secret (``whsec_`` + base64 of >= 24 bytes),
  so any Standard Webhooks library verifies it.
- During a secret rotation's overlap (``Delivery.previous_secrets``), ``webhook-signature``
  carries one signature per secret, the new one first, space separated
  (``v1,<new> v1,<old>``): Standard Webhooks libraries accept a message when any of them
  verifies, so a receiver still holding the old secret keeps working. ``X-Webhook-Signature``
  holds one value and is signed with the new secret only.

Every address the connection is about to use is checked with ``paygate.webhook_address_allowed``
after DNS resolution, so a name that resolves to an internal address is refused even if it
looked public when it was configured. ``Delivery.timeout`` bounds the whole attempt: one watchdog
thread shuts the socket when it runs out (within 50 ms), so a receiver that drips its answer
cannot hold a worker.
Redirects are not followed (a redirect is a failed attempt). Each thread keeps its own
keep-alive connections. Requests go out through ``requests``' transport adapter with a prepared
request: the ``Session`` layer on top (settings merging, cookies, hooks, redirects, proxies from
the environment) does nothing a webhook needs and cost a quarter of a busy worker's CPU.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import heapq
import hmac
import itertools
import socket
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from requests.utils import get_auth_from_url
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from paygate import Delivery, DeliveryResult, __version__, hookimpl, webhook_address_allowed

# Ships with the gateway.
paygate_api = ">=1.1,<2"  # the plugin API it is written for (docs/plugins.md)
USER_AGENT = f"Paygate-Webhooks/{__version__}"
RESPONSE_LIMIT = 4096
# Read at most this much more of an answer so its connection can be reused; a longer answer
# costs its connection instead.
DRAIN_LIMIT = 64 * 1024


def compatible_signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def standard_webhooks_key(secret: str) -> bytes | None:
    """The signing key of a Standard Webhooks secret, or None if ``secret`` is not one."""
    if not secret.startswith("whsec_"):
        return None
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) >= 24 else None


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(delivery: Delivery) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Signature": compatible_signature(delivery.body, delivery.secret),
        "X-Webhook-Event": delivery.event,
        "X-Webhook-Attempt": str(delivery.attempt),
    }
    keys = [
        key
        for key in map(
            standard_webhooks_key, dict.fromkeys((delivery.secret, *delivery.previous_secrets))
        )
        if key is not None
    ]
    if keys:
        headers["webhook-id"] = delivery.id
        headers["webhook-timestamp"] = str(delivery.timestamp)
        headers["webhook-signature"] = " ".join(
            standard_signature(key, delivery.id, delivery.timestamp, delivery.body) for key in keys
        )
    return headers


# -- one attempt's deadline and address checks --------------------------------------------------


class _Attempt:
    """The attempt running on this thread: its deadline, its sockets, what was refused."""

    def __init__(self, timeout: float, allow_private: bool):
        self.deadline = time.monotonic() + timeout
        self.allow_private = allow_private
        self.refused: list[str] = []
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = False

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            late = self.expired
        if late:
            _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            socks = list(self._socks)
        for sock in socks:
            _shutdown(sock)

    @property
    def done(self) -> bool:
        return self._done

    def __enter__(self) -> _Attempt:
        _current.attempt = self
        _watchdog.watch(self)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._done = True
        _current.attempt = None


class _Watchdog:
    """One thread that expires the attempts whose deadline has passed, checked every
    ``TICK`` seconds while any attempt is running. (A timer thread per attempt would start and
    stop a thread for every delivery: a tenth of a busy worker's CPU.)"""

    TICK = 0.05

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Attempt]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, attempt: _Attempt) -> None:
        with self._cond:
            heapq.heappush(self._heap, (attempt.deadline, next(self._order), attempt))
            if self._thread is None or not self._thread.is_alive():  # first use, or a fork
                self._thread = threading.Thread(
                    target=self._run, name="paygate-webhook-watchdog", daemon=True
                )
                self._thread.start()
            elif len(self._heap) == 1:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            expired = []
            with self._cond:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].done):
                    expired.append(heapq.heappop(self._heap)[2])
                if not self._heap and not expired:
                    self._cond.wait()
            for attempt in expired:
                attempt._expire()  # a finished attempt ignores it
            time.sleep(self.TICK)


_watchdog = _Watchdog()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_current = threading.local()


def _attempt() -> _Attempt | None:
    return getattr(_current, "attempt", None)


def _connect_checked(conn: HTTPConnection) -> socket.socket:
    """Resolve the host, skip every address the policy refuses, connect to the first that
    answers. The address checked is the address connected to: no second lookup in between."""
    attempt = _attempt()
    allow_private = attempt.allow_private if attempt else False
    host = conn._dns_host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, conn.port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise NewConnectionError(conn, f"cannot resolve {host}: {exc}") from exc
    error: OSError | None = None
    for family, socktype, proto, _, address in infos:
        if not webhook_address_allowed(address[0], allow_private=allow_private):
            if attempt is not None:
                attempt.refused.append(address[0])
            continue
        sock = socket.socket(family, socktype, proto)
        try:
            for level, option, value in conn.socket_options or ():
                sock.setsockopt(level, option, value)
            timeout = conn.timeout if isinstance(conn.timeout, int | float) else None
            if attempt is not None:
                timeout = min(timeout or attempt.remaining(), attempt.remaining())
                attempt.watch(sock)
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    if error is None:
        raise NewConnectionError(conn, f"no allowed address for {host}")
    raise NewConnectionError(conn, f"cannot connect to {host}: {error}") from error


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_checked(self)

    def request(self, *args, **kwargs):  # a reused keep-alive socket joins the deadline too
        attempt = _attempt()
        if attempt is not None:
            attempt.watch(self.sock)
        return super().request(*args, **kwargs)


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_checked(self)

    def request(self, *args, **kwargs):
        attempt = _attempt()
        if attempt is not None:
            attempt.watch(self.sock)
        return super().request(*args, **kwargs)


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    """requests' transport with the address-checking connection pools underneath."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPPool,
            "https": _CheckedHTTPSPool,
        }


class HmacWebhookNotifier:
    name = "webhook"

    def __init__(self) -> None:
        self._local = threading.local()

    def _adapter(self) -> HTTPAdapter:
        """This thread's keep-alive connections (retries off: the schedule is the retry)."""
        adapter = getattr(self._local, "adapter", None)
        if adapter is None:
            adapter = _CheckedAdapter(max_retries=0, pool_connections=10, pool_maxsize=1)
            self._local.adapter = adapter
        return adapter

    def headers(self, delivery: Delivery) -> dict[str, str]:
        """The headers ``deliver`` sends with ``delivery`` (the events feed shows them, so
        ``paygate listen`` forwards an event signed exactly as a delivery of it)."""
        return signed_headers(delivery)

    def deliver(self, delivery: Delivery) -> DeliveryResult:
        with _Attempt(delivery.timeout, delivery.allow_private) as attempt:
            try:
                return self._post(delivery, attempt)
            except (requests.RequestException, OSError, ValueError) as exc:
                return _failure(attempt, exc)

    def _post(self, delivery: Delivery, attempt: _Attempt) -> DeliveryResult:
        request = _request(delivery)
        # The adapter never follows redirects and, without a Session, takes no proxies or
        # cookies from the environment.
        response = self._adapter().send(
            request, stream=True, timeout=(delivery.timeout, delivery.timeout)
        )
        try:
            text = response.raw.read(RESPONSE_LIMIT, decode_content=True) or b""
            reusable = _drain(response.raw)
        except Exception:  # the answer broke off (or could not be decoded) after its status
            text, reusable = b"", False
        if reusable and not attempt.expired:
            response.raw.release_conn()
        else:
            response.close()
        body = text.decode("utf-8", errors="replace")
        if attempt.expired:  # the whole attempt, answer included, must fit in the timeout
            return DeliveryResult(False, response.status_code, body, error="timeout")
        return DeliveryResult(200 <= response.status_code < 300, response.status_code, body)


@functools.lru_cache(maxsize=1024)
def _plain_url(url: str) -> str | None:
    """requests' own normalisation of ``url`` (IDNA host, quoting), made once per URL; None
    when the URL carries credentials (``prepare`` turns them into an Authorization header)."""
    request = PreparedRequest()
    request.prepare_url(url, None)
    return None if any(get_auth_from_url(request.url)) else request.url


def _request(delivery: Delivery) -> PreparedRequest:
    """The POST that ``PreparedRequest.prepare`` builds, without redoing per delivery what
    cannot change it: the URL is normalised once per URL, and no cookie jar or auth is built
    (there are none). 20 instead of 90 us a delivery (docs/performance.md, "Issue 20")."""
    url = _plain_url(delivery.url)
    request = PreparedRequest()
    if url is None:  # credentials in the URL: the full preparation
        request.prepare(
            method="POST", url=delivery.url, headers=signed_headers(delivery), data=delivery.body
        )
        return request
    request.method = "POST"
    request.url = url
    request.prepare_headers(signed_headers(delivery))  # validated as prepare does
    request.body = delivery.body
    request.headers["Content-Length"] = str(len(delivery.body))
    return request


def _drain(raw) -> bool:
    """Read what is left of a short answer so its connection goes back to the pool."""
    left = DRAIN_LIMIT
    while left > 0:
        chunk = raw.read(min(left, 8192), decode_content=False)
        if not chunk:
            return True
        left -= len(chunk)
    return False


def _failure(attempt: _Attempt, exc: Exception) -> DeliveryResult:
    if attempt.expired or isinstance(exc, requests.Timeout):
        return DeliveryResult(ok=False, error="timeout")
    if attempt.refused:
        return DeliveryResult(
            ok=False,
            error=f"address not allowed: {', '.join(dict.fromkeys(attempt.refused))}",
        )
    return DeliveryResult(ok=False, error=f"connection error: {exc.__class__.__name__}")


@hookimpl
def paygate_register_notifiers(register):
    register(HmacWebhookNotifier())
