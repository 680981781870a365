"""The ``test`` processor: the simulated bank of CONTRACT.md section 4, plus magic test values.

Outcomes are decided by the payment alone (its id seeds the "randomness", its creation time
starts the clock), so asking twice with the same idempotency key always gives the same answer
and a job re-run after a crash can never charge twice or flip an outcome. While the simulated
processing delay has not elapsed the processor answers *pending* with ``retry_after``, which the
worker honours without holding a thread for long delays.

Magic values (they win over ``TEST_MODE``, ``TEST_PAYMENT_SUCCESS`` and the success rates):

- UPI ``success@test`` always succeeds, ``failure@test`` always fails.
- Card ``4242 4242 4242 4242`` (visa ending 4242) always succeeds; ``4000 0000 0000 0002``
  (visa ending 0002) is always declined.
- Card ``4000 0000 0000 3220`` (visa ending 3220) needs 3-D Secure: the charge answers
  ``action_required`` with the challenge page of the checkout app
  (``{checkout_url}/checkout/challenge/{payment id}``); its buttons post a signed callback
  (approve: success; deny: failed ``AUTHENTICATION_FAILED``); a challenge left unanswered for
  ``PAYGATE_TESTMODE_CHALLENGE_SECONDS`` (600) after the payment was created fails
  ``AUTHENTICATION_TIMEOUT``.
- A refund whose reason is ``fail@test`` is refused by the processor.

Tokenization (processor API v2): ``tokenize`` is in-process and instant. The token is
``tok_test_<behaviour>_<random>``: it keeps only the behaviour class of the method (``succeed``,
``decline``, ``challenge`` or ``normal``), never the card number, so charge and sync know what
to do from the token alone. A payment without a token (made before tokenization existed) is
decided by its card network and last 4 or its VPA, as before (and is never challenged).

Callbacks: ``POST /api/v1/processors/test/callbacks`` takes the JSON body
``{"payment_id", "event_id", "result": "approve"|"deny"}`` signed with HMAC-SHA256 (hex) in the
``paygate-test-signature`` header. The key is derived from ``PAYGATE_SECRET_KEY``
(``callback_key``); in development without a secret key it is a fixed development value, known
to anyone (production refuses to start without the secret key). A forged or unsigned callback
is refused (``read_callback`` answers None).

Set ``PAYGATE_TESTMODE_LEDGER`` (``settings.testmode_ledger``) to a file path and the processor
keeps a ledger that every worker process shares, so the crash-safety tests can see double
charges:

- The file gets one line per call: ``charge <key> <payment id>`` for the first charge with an
  idempotency key (the money moves), ``charge-repeat <key> <payment id>`` for a charge repeated
  with a key already seen (the bank answers from its record: no money moves), ``sync <payment
  id>``, ``capture <payment id>``, ``release <payment id>``, and ``refund``/``refund-repeat <refund id> <payment id>``.
- ``<ledger>.d/`` holds one file per money movement (``charge-<hash of key>``, ``refund-<...>``)
  created atomically (link, which fails if it exists), so "has this key moved money?" has one
  answer across processes and survives a SIGKILL at any instant. A payment charged under two
  different keys shows up as two files naming the same payment: that is a double charge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from datetime import UTC, datetime

from paygate import (
    CallbackRequest,
    CallbackTarget,
    ChargeRequest,
    ChargeResult,
    MethodDetails,
    Payment,
    Refund,
    RefundResult,
    TokenizeRequest,
    TokenResult,
    hookimpl,
)

# Ships with the gateway. It still reads the gateway's Settings (its knobs are gateway settings:
# TEST_MODE, the success rates, the delays, the secret key), which plugin API 1.1 deprecates for
# third-party plugins but keeps for the rest of 1.x.
paygate_api = ">=1.1,<2"  # the plugin API it is written for (docs/plugins.md)
ALWAYS_SUCCEED_VPA = "success@test"
ALWAYS_FAIL_VPA = "failure@test"
ALWAYS_SUCCEED_CARD = ("visa", "4242")
ALWAYS_DECLINE_CARD = ("visa", "0002")
CHALLENGE_CARD = ("visa", "3220")
FAILING_REFUND_REASON = "fail@test"

# Behaviour classes, the only thing a token says about the method details.
SUCCEED = "succeed"
DECLINE = "decline"
CHALLENGE = "challenge"
NORMAL = "normal"
BEHAVIOURS = (SUCCEED, DECLINE, CHALLENGE, NORMAL)
TOKEN_PREFIX = "tok_test_"

SIGNATURE_HEADER = "paygate-test-signature"
CALLBACK_KEY_LABEL = b"paygate-test-processor-callbacks"
# Development only (no PAYGATE_SECRET_KEY): a fixed, public key. Production needs the secret key.
DEVELOPMENT_CALLBACK_SECRET = "paygate-test-processor-development-key"
APPROVE = "approve"
DENY = "deny"
AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
AUTHENTICATION_FAILED_DESCRIPTION = "The card issuer could not authenticate the buyer"
AUTHENTICATION_TIMEOUT = "AUTHENTICATION_TIMEOUT"
AUTHENTICATION_TIMEOUT_DESCRIPTION = "The buyer did not complete 3-D Secure in time"
REFUND_DELAY_MIN_MS = 3000
REFUND_DELAY_MAX_MS = 5000


def _unit(key: str, purpose: str) -> float:
    """A number in [0, 1) fixed by ``key``: the same payment always draws the same value."""
    digest = hashlib.sha256(f"{purpose}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class TestModeProcessor:
    name = "test"
    methods = frozenset({"upi", "card"})
    supports_partial_refund = True
    supports_manual_capture = False
    # ``tokenize`` is in-process and instant: the core calls it inline (no thread hop).
    tokenize_inline = True

    def __init__(self, settings):
        # The gateway's Settings (not a per-merchant ``settings`` declaration: it has none).
        self.gateway = settings
        self.ledger_path = settings.testmode_ledger
        secret = settings.secret_key or DEVELOPMENT_CALLBACK_SECRET
        self.callback_key = hmac.new(secret.encode(), CALLBACK_KEY_LABEL, "sha256").digest()

    # -- the decisions -----------------------------------------------------------------------

    def processing_delay_ms(self, key: str) -> int:
        s = self.gateway
        if s.test_mode:
            return max(0, s.test_processing_delay_ms)
        low, high = sorted((s.processing_delay_min_ms, s.processing_delay_max_ms))
        return int(low + _unit(key, "delay") * (high - low))

    def refund_delay_ms(self, key: str) -> int:
        if self.gateway.test_mode:
            return max(0, self.gateway.test_processing_delay_ms)
        span = REFUND_DELAY_MAX_MS - REFUND_DELAY_MIN_MS
        return int(REFUND_DELAY_MIN_MS + _unit(key, "refund-delay") * span)

    def behaviour(self, payment: Payment, token: str | None = None) -> str:
        """What the method does: from the token when the payment has one, else (a payment made
        before tokenization) from its card network and last 4 or its VPA."""
        token = token or payment.method_token
        if token and token.startswith(TOKEN_PREFIX):
            kind = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
            if kind in BEHAVIOURS:
                return kind
        if payment.method == "upi":
            return {ALWAYS_SUCCEED_VPA: SUCCEED, ALWAYS_FAIL_VPA: DECLINE}.get(payment.vpa, NORMAL)
        card = (payment.card_network, payment.card_last4)
        return {ALWAYS_SUCCEED_CARD: SUCCEED, ALWAYS_DECLINE_CARD: DECLINE}.get(card, NORMAL)

    def succeeds(self, payment: Payment, behaviour: str | None = None) -> bool:
        behaviour = behaviour or self.behaviour(payment)
        if behaviour in (SUCCEED, DECLINE):
            return behaviour == SUCCEED
        if self.gateway.test_mode:
            return self.gateway.test_payment_success
        rate = (
            self.gateway.upi_success_rate
            if payment.method == "upi"
            else self.gateway.card_success_rate
        )
        return _unit(payment.id, "outcome") < rate

    def challenge_url(self, payment_id: str) -> str:
        return f"{self.gateway.checkout_url}/checkout/challenge/{payment_id}"

    def challenge_seconds_left(self, payment: Payment) -> float:
        """How long the buyer still has to answer the 3-D Secure challenge (0 when it is over)."""
        delay_ms = int(self.gateway.testmode_challenge_seconds * 1000)
        return max(0.0, _remaining_seconds(payment.created_at, delay_ms))

    def awaits_challenge(self, payment: Payment) -> bool:
        """True for a pending 3-D Secure payment whose challenge may still be answered (the
        checkout app's challenge page asks before showing its buttons)."""
        return (
            payment.processor == self.name
            and payment.status == "pending"
            and self.behaviour(payment) == CHALLENGE
            and self.challenge_seconds_left(payment) > 0
        )

    # -- the Processor protocol ------------------------------------------------------------

    def tokenize(self, request: TokenizeRequest) -> TokenResult:
        """In-process and instant: a random token carrying only the behaviour class."""
        kind = _behaviour_of(request.details)
        return TokenResult.ok(f"{TOKEN_PREFIX}{kind}_{secrets.token_hex(12)}")

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self._money("charge", request.idempotency_key, request.payment.id)
        return self._outcome(request.payment, self.behaviour(request.payment, request.token))

    def sync(self, payment: Payment) -> ChargeResult:
        self._note(f"sync {payment.id}")
        return self._outcome(payment, self.behaviour(payment))

    # -- callbacks (the 3-D Secure challenge's answer) --------------------------------------

    def sign(self, body: bytes) -> str:
        return hmac.new(self.callback_key, body, "sha256").hexdigest()

    def challenge_callback(self, payment_id: str, result: str) -> CallbackRequest:
        """The signed notification the simulated bank sends when the buyer answers the
        challenge (``approve`` or ``deny``): the checkout app's challenge page posts it."""
        body = json.dumps(
            {
                "payment_id": payment_id,
                "event_id": f"evt_test_{secrets.token_hex(8)}",
                "result": result,
            }
        ).encode()
        return CallbackRequest(body=body, headers={SIGNATURE_HEADER: self.sign(body)})

    def callback_target(self, request: CallbackRequest) -> CallbackTarget | None:
        message = _callback_message(request.body)
        if message is None:
            return None
        event_id = message.get("event_id")
        return CallbackTarget(
            payment_id=message["payment_id"],
            event_id=event_id if isinstance(event_id, str) else None,
        )

    def read_callback(self, request: CallbackRequest, config=None) -> ChargeResult | None:
        signature = request.headers.get(SIGNATURE_HEADER) or ""
        if not hmac.compare_digest(signature.encode(), self.sign(request.body).encode()):
            return None
        message = _callback_message(request.body)
        if message is None:
            return None
        if message.get("result") == APPROVE:
            return ChargeResult.success(reference=f"test_{message['payment_id']}")
        if message.get("result") == DENY:
            return ChargeResult.failed(
                AUTHENTICATION_FAILED,
                AUTHENTICATION_FAILED_DESCRIPTION,
                reference=f"test_{message['payment_id']}",
            )
        return None

    def capture(self, payment: Payment, amount: int) -> ChargeResult:
        """Any amount up to the payment's (the gateway checks it): captured at once."""
        self._note(f"capture {payment.id}")
        return ChargeResult.success(reference=f"test_cap_{payment.id}_{amount}")

    def release(self, payment: Payment, config=None) -> ChargeResult:
        """An uncaptured authorization given back at once."""
        self._note(f"release {payment.id}")
        return ChargeResult.success(reference=f"test_rel_{payment.id}")

    def refund(self, payment: Payment, refund: Refund) -> RefundResult:
        self._money("refund", refund.id, payment.id)
        remaining = _remaining_seconds(refund.created_at, self.refund_delay_ms(refund.id))
        if remaining > 0:
            return RefundResult.pending(retry_after=remaining)
        if refund.reason == FAILING_REFUND_REASON:
            return RefundResult.failed()  # REFUND_FAILED (docs/declines.md)
        return RefundResult.processed(reference=f"test_{refund.id}")

    # -- helpers --------------------------------------------------------------------------

    def _outcome(self, payment: Payment, behaviour: str) -> ChargeResult:
        if behaviour == CHALLENGE:
            left = self.challenge_seconds_left(payment)
            if left <= 0:
                return ChargeResult.failed(
                    AUTHENTICATION_TIMEOUT, AUTHENTICATION_TIMEOUT_DESCRIPTION
                )
            return ChargeResult.action_required(self.challenge_url(payment.id), retry_after=left)
        remaining = _remaining_seconds(payment.created_at, self.processing_delay_ms(payment.id))
        if remaining > 0:
            return ChargeResult.pending(retry_after=remaining)
        if self.succeeds(payment, behaviour):
            return ChargeResult.success(reference=f"test_{payment.id}")
        return ChargeResult.failed()  # PAYMENT_FAILED, the contract's generic decline

    def _money(self, operation: str, key: str, payment_id: str) -> None:
        """Record a call that moves money the first time its key is seen, and only then."""
        if not self.ledger_path:
            return
        record = f"{operation} {key} {payment_id}"
        directory = f"{self.ledger_path}.d"
        os.makedirs(directory, exist_ok=True)
        name = f"{operation}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"
        fd, draft = tempfile.mkstemp(dir=directory, prefix=".draft-")
        try:
            os.write(fd, record.encode())
            os.close(fd)
            os.link(draft, os.path.join(directory, name))  # atomic; fails if the key was seen
            first = True
        except FileExistsError:
            first = False
        finally:
            os.unlink(draft)
        self._note(record if first else f"{operation}-repeat {key} {payment_id}")

    def _note(self, line: str) -> None:
        if self.ledger_path:
            fd = os.open(self.ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, f"{line}\n".encode())  # one write() under O_APPEND: no interleaving
            finally:
                os.close(fd)


def _behaviour_of(details: MethodDetails) -> str:
    """The magic values by card network and last 4, as a payment's record holds them (so a
    visa ending 4242 behaves the same with or without a token)."""
    if details.method == "upi":
        return {ALWAYS_SUCCEED_VPA: SUCCEED, ALWAYS_FAIL_VPA: DECLINE}.get(details.vpa, NORMAL)
    card = details.card
    if card is None:
        return NORMAL
    key = (card.network, card.last4 or "".join(ch for ch in card.number if ch.isdigit())[-4:])
    return {
        ALWAYS_SUCCEED_CARD: SUCCEED,
        ALWAYS_DECLINE_CARD: DECLINE,
        CHALLENGE_CARD: CHALLENGE,
    }.get(key, NORMAL)


def _callback_message(body: bytes) -> dict | None:
    """The callback's JSON object when it has a payment id, else None."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("payment_id"), str):
        return None
    return message


def _remaining_seconds(started: datetime | None, delay_ms: int) -> float:
    if started is None or delay_ms <= 0:
        return 0.0
    elapsed = (datetime.now(UTC) - started).total_seconds()
    return delay_ms / 1000 - elapsed


@hookimpl
def paygate_register_processors(register, settings):
    register(TestModeProcessor(settings))
