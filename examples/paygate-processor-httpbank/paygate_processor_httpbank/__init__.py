"""Httpbank: an example Paygate processor that wraps a real HTTP payment service (processor API v2).

The PSP is ``paygate_processor_httpbank.bank``, an emulator with its own server. This module is
what a plugin author writes for such a PSP:

- ``settings``: each merchant's own bank account (``base_url``, ``api_key``,
  ``signing_secret``), set by operators with ``paygate processors configure``; the values come
  in as ``config`` on every operation.
- ``tokenize``: the card or VPA goes to the bank once, at payment creation; Paygate keeps only
  the bank's token, and ``charge`` sends that token.
- ``charge``: authorizes (``supports_manual_capture``); a card answers
  ``ChargeResult.action_required`` with the bank's 3-D Secure page.
- ``callback_target`` / ``read_callback``: the bank's signed notification after the buyer's
  choice (HMAC-SHA256 over ``"<t>.<raw body>"``, five minutes' tolerance).
- ``sync``, ``capture`` (partial), ``release`` (void) and ``refund`` (partial).

Every call is idempotent on the key Paygate gives (payment or refund id); network trouble
raises (Paygate keeps the operation pending and asks again), a refusal is a ``FAILED`` answer
with a code from Paygate's decline catalogue. When no connection could be made at all (the
request provably never reached the bank) it raises ``ProcessorUnreachable``
(:class:`BankUnreachable`): Paygate may then route the payment to the merchant's next
processor, and logs the outage as one WARNING line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from paygate import (
    CallbackRequest,
    CallbackTarget,
    ChargeRequest,
    ChargeResult,
    Payment,
    PluginContext,
    PluginError,
    ProcessorSetting,
    ProcessorUnreachable,
    Refund,
    RefundResult,
    TokenizeRequest,
    TokenResult,
    declines,
    hookimpl,
)

__version__ = "0.1.0"
# The plugin API this plugin needs (uses context): checked by the gateway at load.
paygate_api = ">=1.1,<2"

NAME = "httpbank"
SIGNATURE_HEADER = "httpbank-signature"  # Paygate hands headers over in lower case
SIGNATURE_TOLERANCE = 300  # seconds between the bank signing a callback and us reading it
DEFAULT_TIMEOUT = 5.0  # seconds for one call to the bank (connect and read)
CHALLENGE_RECHECK = 30.0  # while the buyer is on the bank's page: ask again after this
PROCESSING_RECHECK = 1.0
# Paygate's decline catalogue (paygate/declines.py, docs/declines.md): the bank's codes that are
# in it pass through; any other is reported as the operation's generic code (PAYMENT_FAILED,
# CAPTURE_FAILED, ...) with the bank's description.
KNOWN_CODES = frozenset(decline.code for decline in declines.CATALOGUE)


class BankUnavailable(Exception):
    """The bank could not be reached or answered 5xx: the outcome is unknown, ask again."""


class BankUnreachable(ProcessorUnreachable, BankUnavailable):
    """No connection to the bank was made (refused, no route, unknown host, connect timeout):
    the request provably never reached it, so nothing moved. Paygate may send the payment to
    the merchant's next processor, and logs one WARNING line instead of a traceback."""


def never_sent(exc: requests.RequestException) -> bool:
    """Whether ``exc`` happened before any byte of the request reached the bank: the TCP (or
    TLS) connection was never established. A reset or a read timeout after connecting is not
    proof: the bank may have acted on the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _url_problem(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// URL, such as https://api.httpbank.example"
    if parts.query or parts.fragment:
        return "must not have a query or a fragment"
    return None


def _secret_problem(value: str) -> str | None:
    if len(value) < 8 or any(ch.isspace() for ch in value):
        return "must be at least 8 characters without spaces (as the bank issued it)"
    return None


def verify_signature(
    secret: str, body: bytes, header: str | None, now: float | None = None
) -> bool:
    """True when ``header`` (``t=<unix time>,v1=<hex>``) signs ``body`` with ``secret`` and
    was made within :data:`SIGNATURE_TOLERANCE` seconds of ``now``."""
    if not header or not secret:
        return False
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > SIGNATURE_TOLERANCE:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def _code(error: Mapping[str, Any] | None, default: str) -> tuple[str, str]:
    error = error or {}
    code = str(error.get("code") or default)
    message = str(error.get("message") or "Declined by Httpbank")
    return (code if code in KNOWN_CODES else default), message


def charge_result(charge: Mapping[str, Any]) -> ChargeResult:
    """What a bank charge means for Paygate's payment."""
    status, reference = charge.get("status"), charge.get("id")
    if status in ("authorized", "succeeded", "voided"):
        return ChargeResult.success(reference=reference)
    if status == "failed":
        code, message = _code(charge.get("error"), declines.PAYMENT_FAILED)
        return ChargeResult.failed(code, message, reference=reference)
    if status == "requires_action":
        url = (charge.get("next_action") or {}).get("url")
        return ChargeResult.action_required(url, retry_after=CHALLENGE_RECHECK, reference=reference)
    return ChargeResult.pending(retry_after=PROCESSING_RECHECK, reference=reference)


def refund_result(refund: Mapping[str, Any]) -> RefundResult:
    status, reference = refund.get("status"), refund.get("id")
    if status == "succeeded":
        return RefundResult.processed(reference=reference)
    if status == "failed":
        code, message = _code(refund.get("error"), declines.REFUND_FAILED)
        return RefundResult.failed(code, message, reference=reference)
    return RefundResult.pending(retry_after=PROCESSING_RECHECK, reference=reference)


class HttpbankProcessor:
    name = NAME
    methods = frozenset({"card", "upi"})
    supports_partial_refund = True
    supports_manual_capture = True  # charge authorizes; capture moves the money
    currencies = frozenset({"INR"})
    min_amount = 100  # ₹1.00
    max_amount = 100_000_000  # ₹10,00,000.00: the bank's own limit
    settings = (
        ProcessorSetting(
            "base_url",
            "The bank's API address, e.g. https://api.httpbank.example",
            validate=_url_problem,
        ),
        ProcessorSetting(
            "api_key", "The merchant's Httpbank API key", secret=True, validate=_secret_problem
        ),  # fmt: skip
        ProcessorSetting(
            "signing_secret",
            "The secret Httpbank signs this merchant's callbacks with",
            secret=True,
            validate=_secret_problem,
        ),
    )

    def __init__(self, callback_url: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.callback_url = callback_url
        self.timeout = timeout

    # -- talking to the bank -----------------------------------------------------------------

    def _call(
        self,
        config: Mapping[str, str],
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON) for 2xx and 4xx answers; :class:`BankUnavailable` otherwise."""
        base, api_key = config.get("base_url"), config.get("api_key")
        if not base or not api_key:
            raise PluginError("httpbank is not configured for this merchant (base_url, api_key)")
        headers = {"Authorization": f"Bearer {api_key}"}
        if key:
            headers["Idempotency-Key"] = key
        try:
            answer = requests.request(
                method,
                base.rstrip("/") + path,
                json=body,
                params=params,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            if never_sent(exc):
                raise BankUnreachable(
                    f"Httpbank refused the connection ({type(exc).__name__})"
                ) from None
            raise BankUnavailable(f"Httpbank unreachable: {type(exc).__name__}") from None
        if answer.status_code >= 500 or answer.status_code in (401, 403, 429):
            raise BankUnavailable(f"Httpbank answered {answer.status_code}")
        try:
            data = answer.json()
        except ValueError:
            raise BankUnavailable(f"Httpbank answered {answer.status_code} without JSON") from None
        return answer.status_code, data

    def _find_charge(self, payment: Payment, config: Mapping[str, str]) -> dict | None:
        if payment.processor_reference:
            status, data = self._call(config, "GET", f"/v1/charges/{payment.processor_reference}")
        else:  # the charge's answer was lost: find it by the key we sent it with
            status, data = self._call(
                config, "GET", "/v1/charges", params={"idempotency_key": payment.id}
            )
        return data if status == 200 else None

    def _charge_id(self, payment: Payment, config: Mapping[str, str]) -> str | None:
        if payment.processor_reference:
            return payment.processor_reference
        charge = self._find_charge(payment, config)
        return charge["id"] if charge else None

    # -- v2 operations -----------------------------------------------------------------------

    def tokenize(self, request: TokenizeRequest) -> TokenResult:
        details = request.details
        if details.method == "card" and details.card is not None:
            card = details.card
            body: dict[str, Any] = {
                "card": {
                    "number": card.number,
                    "exp_month": card.expiry_month,
                    "exp_year": card.expiry_year,
                    "cvc": card.cvv,
                    "name": card.holder_name,
                }
            }
        elif details.method == "upi" and details.vpa:
            body = {"vpa": details.vpa}
        else:
            return TokenResult.refused(declines.PAYMENT_FAILED, "Httpbank takes cards and UPI only")
        status, data = self._call(
            request.config, "POST", "/v1/tokens", body, key=f"{request.idempotency_key}:token"
        )
        if status == 200 and data.get("token"):
            return TokenResult.ok(data["token"])
        code, message = _code(data.get("error"), declines.PAYMENT_FAILED)
        return TokenResult.refused(code, message)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        if not request.token:
            return ChargeResult.failed(declines.PAYMENT_FAILED, "The payment has no Httpbank token")
        payment = request.payment
        body = {
            "token": request.token,
            "amount": payment.amount,
            "currency": payment.currency,
            "capture": False,  # authorize only: Paygate captures (supports_manual_capture)
            "return_url": request.return_url,
            "callback_url": self.callback_url,
        }
        status, data = self._call(
            request.config, "POST", "/v1/charges", body, key=request.idempotency_key
        )
        if status == 200:
            return charge_result(data)
        code, message = _code(data.get("error"), declines.PAYMENT_FAILED)
        return ChargeResult.failed(code, message)

    def sync(self, payment: Payment, config: Mapping[str, str]) -> ChargeResult:
        charge = self._find_charge(payment, config)
        if charge is None:  # not known to the bank (yet): never guess
            return ChargeResult.pending(retry_after=PROCESSING_RECHECK)
        return charge_result(charge)

    def capture(self, payment: Payment, amount: int, config: Mapping[str, str]) -> ChargeResult:
        charge_id = self._charge_id(payment, config)
        if charge_id is None:
            return ChargeResult.failed(
                declines.CAPTURE_FAILED, "Httpbank has no charge for this payment"
            )
        status, data = self._call(
            config,
            "POST",
            f"/v1/charges/{charge_id}/capture",
            {"amount": amount},
            key=f"{payment.id}:capture:{amount}",  # a retry of this capture, not another
        )
        if status == 200:
            return ChargeResult.success(reference=data.get("id"))
        code, message = _code(data.get("error"), declines.CAPTURE_FAILED)
        return ChargeResult.failed(code, message, reference=charge_id)

    def release(self, payment: Payment, config: Mapping[str, str]) -> ChargeResult:
        charge_id = self._charge_id(payment, config)
        if charge_id is None:
            return ChargeResult.failed(
                declines.RELEASE_FAILED, "Httpbank has no charge for this payment"
            )
        status, data = self._call(
            config, "POST", f"/v1/charges/{charge_id}/void", {}, key=f"{payment.id}:release"
        )
        if status == 200:
            return ChargeResult.success(reference=data.get("id"))
        code, message = _code(data.get("error"), declines.RELEASE_FAILED)
        return ChargeResult.failed(code, message, reference=charge_id)

    def refund(self, payment: Payment, refund: Refund, config: Mapping[str, str]) -> RefundResult:
        charge_id = self._charge_id(payment, config)
        if charge_id is None:
            return RefundResult.failed(
                declines.REFUND_FAILED, "Httpbank has no charge for this payment"
            )
        status, data = self._call(
            config,
            "POST",
            "/v1/refunds",
            {"charge": charge_id, "amount": refund.amount},
            key=refund.id,
        )
        if status == 200:
            return refund_result(data)
        code, message = _code(data.get("error"), declines.REFUND_FAILED)
        return RefundResult.failed(code, message)

    # -- callbacks ---------------------------------------------------------------------------

    @staticmethod
    def _event(request: CallbackRequest) -> dict[str, Any] | None:
        try:
            event = json.loads(request.body)
        except ValueError:
            return None
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            return None
        return event

    def callback_target(self, request: CallbackRequest) -> CallbackTarget | None:
        """Which payment the notification is about (unverified: no secret is known yet)."""
        event = self._event(request)
        if event is None or event["data"].get("object") != "charge":
            return None
        payment_id = event["data"].get("idempotency_key")
        if not isinstance(payment_id, str) or not payment_id:
            return None
        return CallbackTarget(payment_id=payment_id, event_id=str(event.get("id") or "") or None)

    def read_callback(
        self, request: CallbackRequest, config: Mapping[str, str]
    ) -> ChargeResult | None:
        """The verified outcome, or None when the signature (or its age) does not hold."""
        header = request.headers.get(SIGNATURE_HEADER)
        if not verify_signature(config.get("signing_secret", ""), request.body, header):
            return None
        event = self._event(request)
        if event is None or event["data"].get("object") != "charge":
            return None
        return charge_result(event["data"])


def timeout_of(context: PluginContext) -> float:
    """Seconds for one call to the bank: the operator's ``PAYGATE_PLUGIN_HTTPBANK_TIMEOUT_SECONDS``
    (``context.config["timeout_seconds"]``), default 5; anything but a number in (0, 60] is a
    start-up error naming the variable."""
    raw = context.config.get("timeout_seconds", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 60:
        raise PluginError(
            f"PAYGATE_PLUGIN_HTTPBANK_TIMEOUT_SECONDS must be a number in (0, 60], got {raw!r}"
        )
    return value


@hookimpl
def paygate_register_processors(register, context: PluginContext) -> None:
    callback_url = f"{context.api_url.rstrip('/')}/api/v1/processors/{NAME}/callbacks"
    register(HttpbankProcessor(callback_url=callback_url, timeout=timeout_of(context)))
