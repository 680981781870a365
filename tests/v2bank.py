"""An in-test Processor API v2 processor: tokenize, buyer actions, callbacks, settings.

It records what it was handed (``tokenized``: the TokenizeRequests; ``charged``: the
ChargeRequests) and answers from scripts that tests set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field

from paygate import ChargeRequest, ChargeResult, Payment, Refund, RefundResult
from paygate.types import (
    CallbackRequest,
    CallbackTarget,
    ProcessorSetting,
    TokenizeRequest,
    TokenResult,
)

CALLBACK_SECRET = "cb_secret_v2bank"


def sign(body: bytes, secret: str = CALLBACK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def callback_body(**fields) -> bytes:
    return json.dumps(fields).encode()


@dataclass
class VaultBank:
    name: str = "vaultbank"
    methods: frozenset[str] = frozenset({"upi", "card"})
    supports_partial_refund: bool = True
    supports_manual_capture: bool = False
    settings: tuple = (ProcessorSetting("api_key", required=False),)
    currencies: frozenset[str] | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    # "ok", "refuse", "raise", "hang" (until ``release_hang`` is set), "garbage"
    tokenize_mode: str = "ok"
    charges: list = field(default_factory=lambda: [ChargeResult.success(reference="vb_1")])
    syncs: list = field(default_factory=lambda: [ChargeResult.success(reference="vb_1")])
    tokenized: list = field(default_factory=list)
    charged: list = field(default_factory=list)
    synced: list = field(default_factory=list)
    release_hang: threading.Event = field(default_factory=threading.Event)

    def tokenize(self, request: TokenizeRequest) -> TokenResult:
        self.tokenized.append(request)
        if self.tokenize_mode == "refuse":
            return TokenResult.refused("INCORRECT_CVV", "The card's CVV is incorrect")
        if self.tokenize_mode == "raise":
            number = request.details.card.number if request.details.card else request.details.vpa
            raise RuntimeError(f"bank exploded on {number}")
        if self.tokenize_mode == "hang":
            self.release_hang.wait(30)
        if self.tokenize_mode == "garbage":
            return "tok"  # type: ignore[return-value]
        return TokenResult.ok(f"tok_{request.idempotency_key}")

    @staticmethod
    def _next(script: list):
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self.charged.append(request)
        return self._next(self.charges)

    def sync(self, payment: Payment, config) -> ChargeResult:
        self.synced.append(payment.id)
        return self._next(self.syncs)

    def capture(self, payment: Payment, amount: int, config) -> ChargeResult:
        return ChargeResult.success()

    def refund(self, payment: Payment, refund: Refund, config) -> RefundResult:
        return RefundResult.processed()

    # -- callbacks: {"payment_id"|"refund_id", "event_id", "status", "code"?, "url"?} signed
    # with HMAC-SHA256 in the X-Vaultbank-Signature header.

    def callback_target(self, request: CallbackRequest) -> CallbackTarget | None:
        data = json.loads(request.body)
        return CallbackTarget(
            payment_id=data.get("payment_id"),
            refund_id=data.get("refund_id"),
            event_id=data.get("event_id"),
        )

    def read_callback(self, request: CallbackRequest, config):
        signature = request.headers.get("x-vaultbank-signature", "")
        if not hmac.compare_digest(signature, sign(request.body)):
            return None
        data = json.loads(request.body)
        status = data["status"]
        result = RefundResult if "refund_id" in data else ChargeResult
        if status == "success":
            if result is RefundResult:
                return RefundResult.processed(reference=data.get("reference"))
            return ChargeResult.success(reference=data.get("reference"))
        if status == "failed":
            return result.failed(data.get("code"), data.get("description"), data.get("reference"))
        if data.get("url"):
            return ChargeResult.action_required(data["url"], retry_after=600)
        return result.pending(reference=data.get("reference"))
