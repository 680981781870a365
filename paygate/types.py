"""The values that cross the plugin boundary: frozen dataclasses, enums and protocols. No I/O."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, runtime_checkable

T = TypeVar("T")


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


class RefundStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


class OrderStatus(StrEnum):
    CREATED = "created"
    PAID = "paid"


class Outcome(StrEnum):
    """What a processor says about an operation: done, refused, or not known yet."""

    SUCCESS = "success"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True)
class Money:
    """An amount in integer minor units (paise for INR) and its ISO 4217 currency."""

    amount: int
    currency: str = "INR"

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount must be an int of minor units")

    def __str__(self) -> str:
        """``₹1,234.00`` for 123400 paise; ``-₹5.00`` below zero; ``USD 1.00`` for a currency
        without a symbol here. The one money format of the dashboard and the checkout page."""
        sign = "-" if self.amount < 0 else ""
        major, minor = divmod(abs(self.amount), 100)
        symbol = CURRENCY_SYMBOLS.get(self.currency)
        prefix = symbol if symbol else f"{self.currency} "
        return f"{sign}{prefix}{major:,}.{minor:02d}"


CURRENCY_SYMBOLS = {"INR": "\u20b9", "USD": "$", "EUR": "\u20ac", "GBP": "\u00a3"}


@dataclass(frozen=True)
class Merchant:
    """A merchant as the record holds it. Its secrets never appear in a ``repr`` (logs,
    tracebacks, debuggers); read them by name where they are needed. ``api_key`` is its current
    (newest) API key; the API secrets are not here at all: the record keeps only keyed hashes
    of them (``ApiKey``).

    The webhook secret is stored sealed (``paygate.services.webhook_secrets``): a merchant read
    from the database carries it in ``webhook_secret_sealed`` and has ``webhook_secret`` None
    until a service opens it for signing or for showing it to the merchant. (A row written
    around the services in plaintext, by an older version or by hand, arrives in
    ``webhook_secret`` as it is, and is sealed at the next start-up.)
    ``previous_webhook_secret_until``: after a rotation, the previous secret also signs
    deliveries until then.
    """

    id: str
    name: str
    email: str
    api_key: str
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    processor: str = "test"
    password_hash: str | None = field(default=None, repr=False)
    is_active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    webhook_secret_sealed: str | None = field(default=None, repr=False)
    previous_webhook_secret_until: datetime | None = None
    # Tried in order after ``processor`` when one is unavailable before any money moved
    # (issue 17, routing and fallback); empty: no fallback.
    fallback_processors: tuple[str, ...] = ()

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)


@dataclass(frozen=True)
class ApiKey:
    """One of a merchant's API keys. ``secret_hash`` is a keyed hash of its secret (the secret
    itself is shown once, when the key is made, and never stored). A key works while it is not
    revoked and ``expires_at`` (set by a rotation: the overlap) has not passed."""

    id: str
    merchant_id: str
    api_key: str
    secret_hash: str | None = field(default=None, repr=False)
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def live_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)


@dataclass(frozen=True)
class IssuedKey:
    """A key just made, with its secret: what ``merchants create`` and ``rotate-key`` print,
    and the dashboard shows, once."""

    key: ApiKey
    api_secret: str = field(repr=False)


@dataclass(frozen=True)
class Order:
    """What a merchant expects to be paid."""

    id: str
    merchant_id: str
    amount: int
    currency: str
    status: OrderStatus
    receipt: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


@dataclass(frozen=True)
class Payment:
    """A payment as the record holds it. Never carries a card number, CVV or expiry."""

    id: str
    merchant_id: str
    order_id: str
    amount: int
    currency: str
    method: str
    status: PaymentStatus
    processor: str = "test"
    vpa: str | None = None
    card_network: str | None = None
    card_last4: str | None = None
    captured: bool = False
    amount_refunded: int = 0
    error_code: str | None = None
    error_description: str | None = None
    processor_reference: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    captured_at: datetime | None = None
    # Created by a buyer on the public checkout endpoint (not by the merchant's server).
    checkout: bool = False
    # Processor API v2 (issue 16). The opaque token the processor gave for the method details
    # at creation (never shown, never in a webhook); None for a processor without ``tokenize``.
    method_token: str | None = field(default=None, repr=False)
    # While the buyer must act (3-D Secure, a bank page, a UPI collect request): where to send
    # them. Shown as ``next_action`` on the merchant and public GET; None otherwise.
    next_action: NextAction | None = None
    # What a capture took (a partial capture takes less than ``amount``); refunds fit in it.
    amount_captured: int | None = None
    # ``pending`` while a capture's outcome is unknown, ``failed`` after a refused capture
    # (the processor's code and description in capture_error_*), None before any capture.
    capture_status: str | None = None
    capture_error_code: str | None = None
    capture_error_description: str | None = None
    released_at: datetime | None = None
    # How the processor was chosen and every fallback on the way (the API's ``routing``
    # object: processor, decided_by, reason, candidates, attempts); None for payments made
    # before routing was recorded.
    routing: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def refundable_amount(self) -> int:
        """What refunds may still take: the captured amount when a capture took part of the
        payment, else the whole amount, less refunds pending or processed."""
        ceiling = self.amount if self.amount_captured is None else self.amount_captured
        return ceiling - self.amount_refunded


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    merchant_id: str
    amount: int
    reason: str | None
    status: RefundStatus
    error_code: str | None = None
    error_description: str | None = None
    processor_reference: str | None = None
    created_at: datetime | None = None
    processed_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class WebhookAttempt:
    """One recorded attempt of a webhook delivery: where it went and what came back."""

    attempt: int
    url: str
    response_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    attempted_at: datetime | None = None


@dataclass(frozen=True)
class WebhookLog:
    """One event's delivery to a merchant (a ``webhook_logs`` row) and where it stands.

    ``body`` is the payload exactly as sent; ``body``, ``response_body`` and ``attempt_log``
    are filled only where one log is read in full (a list leaves them empty).
    """

    id: str
    merchant_id: str
    event: str
    status: DeliveryStatus
    attempts: int = 0
    resource_id: str | None = None
    response_code: int | None = None
    created_at: datetime | None = None
    last_attempt_at: datetime | None = None
    next_retry_at: datetime | None = None
    updated_at: datetime | None = None
    body: str | None = field(default=None, repr=False)
    response_body: str | None = field(default=None, repr=False)
    attempt_log: tuple[WebhookAttempt, ...] = ()
    endpoint_id: str | None = None  # None: the primary webhook_url
    url: str | None = None  # where it goes: the endpoint's URL, or the primary's current one
    failure_reason: str | None = None  # why it failed (None unless failed): see db.webhooks


@dataclass(frozen=True)
class WebhookEndpoint:
    """One of a merchant's further webhook endpoints (``webhook_endpoints``): its URL, the
    events it is subscribed to (empty: every event) and its secret, sealed like the primary's
    (opened only to sign, or to show once when created or rotated)."""

    id: str
    merchant_id: str
    url: str
    events: tuple[str, ...] = ()
    description: str | None = None
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    secret_sealed: str | None = field(default=None, repr=False)
    previous_secret_sealed: str | None = field(default=None, repr=False)
    previous_secret_until: datetime | None = None
    secret: str | None = field(default=None, repr=False)  # opened: only right after issuing


@dataclass(frozen=True)
class Listing(Generic[T]):
    """One page of a longer list, newest first: the items, how many there are in all, and
    the window asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class ChargeRequest:
    """One attempt to settle ``payment``. ``idempotency_key`` is the payment id: a processor
    that sees the same key twice must not move money twice (return the first outcome)."""

    payment: Payment
    idempotency_key: str
    attempt: int = 1
    # v2: the token ``tokenize`` gave for this payment's method details (None for a processor
    # without ``tokenize``), the merchant's settings for this processor, and where a buyer sent
    # to a ``next_action`` comes back (an absolute URL on the checkout app).
    token: str | None = field(default=None, repr=False)
    config: ProcessorConfig = field(default_factory=dict, repr=False)
    return_url: str | None = None


@dataclass(frozen=True)
class ProcessorAnswer:
    """What a processor answers for one operation (see ``ChargeResult`` and ``RefundResult``).

    ``PENDING`` means "not known yet": the worker asks again after ``retry_after`` seconds (or
    its own backoff) and never guesses an outcome.
    """

    outcome: Outcome
    error_code: str | None = None
    error_description: str | None = None
    reference: str | None = None
    retry_after: float | None = None
    # Only on a PENDING charge or sync answer: the buyer must act first (see NextAction).
    next_action: NextAction | None = None

    # What ``failed()`` records when the processor gives no reason.
    FAILED_CODE: ClassVar[str] = "FAILED"
    FAILED_DESCRIPTION: ClassVar[str] = "Processing failed"

    @classmethod
    def failed(
        cls,
        error_code: str | None = None,
        error_description: str | None = None,
        reference: str | None = None,
    ) -> Self:
        return cls(
            Outcome.FAILED,
            cls.FAILED_CODE if error_code is None else error_code,
            cls.FAILED_DESCRIPTION if error_description is None else error_description,
            reference,
        )

    @classmethod
    def pending(cls, retry_after: float | None = None, reference: str | None = None) -> Self:
        return cls(Outcome.PENDING, reference=reference, retry_after=retry_after)


@dataclass(frozen=True)
class ChargeResult(ProcessorAnswer):
    """The processor's answer for a charge, a capture or a sync."""

    FAILED_CODE: ClassVar[str] = "PAYMENT_FAILED"
    FAILED_DESCRIPTION: ClassVar[str] = "Payment processing failed"

    @classmethod
    def success(cls, reference: str | None = None) -> ChargeResult:
        return cls(Outcome.SUCCESS, reference=reference)

    @classmethod
    def action_required(
        cls, url: str, retry_after: float | None = None, reference: str | None = None
    ) -> ChargeResult:
        """Pending until the buyer has acted at ``url`` (absolute); ``retry_after``: when to
        ask (``sync``) again if no callback or return arrives first (e.g. the challenge's
        timeout)."""
        return cls(
            Outcome.PENDING,
            reference=reference,
            retry_after=retry_after,
            next_action=NextAction(url=url),
        )


@dataclass(frozen=True)
class RefundResult(ProcessorAnswer):
    """The processor's answer for a refund; ``SUCCESS`` means the money went back."""

    FAILED_CODE: ClassVar[str] = "REFUND_FAILED"
    FAILED_DESCRIPTION: ClassVar[str] = "Refund processing failed"

    @classmethod
    def processed(cls, reference: str | None = None) -> RefundResult:
        return cls(Outcome.SUCCESS, reference=reference)


@dataclass(frozen=True)
class RefundRequest:
    """What a merchant asked for, as a refund-policy plugin sees it before anything is written."""

    payment_id: str
    amount: int
    reason: str | None = None


@dataclass(frozen=True)
class RefundDenied:
    """A refund-policy plugin's objection. ``reason`` is shown to the merchant (400)."""

    reason: str


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt of one event to one URL.

    ``body`` holds the bytes to send and sign, unchanged across attempts; ``id`` is stable across
    retries (it is the ``webhook-id`` header); ``timestamp`` is when this attempt is made.
    ``timeout`` bounds the whole attempt (connect, send, answer). ``allow_private`` says whether
    the notifier may connect to private and loopback addresses (a development switch; link-local
    and metadata addresses stay refused; see ``paygate.webhook_address_allowed``).

    ``secret`` is the merchant's current webhook secret. ``previous_secrets`` are secrets that
    still sign during a rotation's overlap window (the one replaced last, until its window ends):
    a notifier signs with each of them too where its scheme carries several signatures
    (Standard Webhooks' ``webhook-signature`` does), so receivers still holding the old secret
    keep verifying. Empty outside a rotation; a notifier that ignores it stays correct but
    makes receivers switch secrets at the instant of rotation.
    """

    id: str
    event: str
    url: str
    body: bytes
    secret: str = field(repr=False)
    attempt: int
    timestamp: int
    timeout: float = 5.0
    allow_private: bool = False
    previous_secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class DeliveryResult:
    """``ok`` is true for a 2xx answer. ``status_code`` is None when no answer came at all."""

    ok: bool
    status_code: int | None = None
    body: str = ""
    error: str | None = None


@dataclass(frozen=True)
class NextAction:
    """What the buyer must do before the processor can decide: today always a redirect to an
    absolute URL (3-D Secure, the bank's page, a UPI app hand-off). The buyer comes back to
    ``ChargeRequest.return_url``."""

    url: str
    type: str = "redirect"

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "url": self.url}


@dataclass(frozen=True)
class CardDetails:
    """A card as the buyer typed it, validated. Exists only in memory during one request: the
    number, CVV and expiry are never stored, logged or shown (``repr`` hides them)."""

    number: str = field(repr=False)
    expiry_month: int = field(repr=False)
    expiry_year: int = field(repr=False)  # four digits
    cvv: str = field(repr=False)
    holder_name: str | None = field(default=None, repr=False)
    network: str = "unknown"
    last4: str = ""


@dataclass(frozen=True)
class MethodDetails:
    """The full payment method details, handed to ``Processor.tokenize`` once."""

    method: str  # "card" or "upi"
    card: CardDetails | None = None
    vpa: str | None = None


@dataclass(frozen=True)
class ProcessorSetting:
    """One per-merchant setting a processor declares in ``Processor.settings``.

    ``secret`` values are write-only (never shown back, encrypted at rest like every value).
    ``validate`` gets the value and returns None when it is acceptable, else a message shown
    to the operator. Without ``required`` a missing value is handed to the processor as absent.
    """

    name: str
    description: str = ""
    required: bool = True
    secret: bool = False
    validate: Callable[[str], str | None] | None = field(default=None, compare=False, repr=False)


# A merchant's values for its processor's settings (``{name: value}``), read-only.
ProcessorConfig = Mapping[str, str]


@dataclass(frozen=True)
class TokenizeRequest:
    """Method details to exchange for an opaque token, at payment creation, before anything is
    written. ``idempotency_key`` is the id the payment will have."""

    details: MethodDetails = field(repr=False)
    merchant_id: str
    amount: int
    currency: str
    idempotency_key: str
    config: ProcessorConfig = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class TokenResult:
    """``token`` (opaque, at most 255 characters) or a refusal with a decline code."""

    token: str | None = field(default=None, repr=False)
    error_code: str | None = None
    error_description: str | None = None

    @classmethod
    def ok(cls, token: str) -> TokenResult:
        return cls(token=token)

    @classmethod
    def refused(cls, error_code: str, error_description: str) -> TokenResult:
        return cls(error_code=error_code, error_description=error_description)


@dataclass(frozen=True)
class CallbackRequest:
    """A notification a PSP posted to ``POST /api/v1/processors/{name}/callbacks``, as
    received: the raw body (verify signatures over these exact bytes) and the headers
    (lower-case names)."""

    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class CallbackTarget:
    """Which record a callback is about (unverified yet): a payment or a refund id (the
    idempotency key the gateway gave the processor), and the PSP's event id if it has one
    (duplicates of one event id are recorded once)."""

    payment_id: str | None = None
    refund_id: str | None = None
    event_id: str | None = None


@runtime_checkable
class Processor(Protocol):
    """A payment processor: the bank, network or PSP that actually moves money.

    ``name`` is the registry key; ``methods`` the payment methods it accepts (``card``, ``upi``).
    Every operation is called with a stable idempotency key (the payment or refund id).

    Version 1 (required): ``charge(request)``, ``capture(payment, amount)``,
    ``refund(payment, refund)``, ``sync(payment)``.

    Version 2 (each optional; see docs/plugins.md "Wrapping a PSP"):

    - ``settings``: a sequence of :class:`ProcessorSetting`, set per merchant by operators;
      the values reach every operation as ``config`` (``ChargeRequest.config``,
      ``TokenizeRequest.config``, and a ``config`` keyword argument to ``capture``, ``refund``,
      ``sync`` and ``release`` when their signature names it).
    - ``currencies`` (a set of ISO codes, or None for any), ``min_amount`` and ``max_amount``
      (minor units, or None): what the processor can take; the API refuses the rest with 400.
    - ``tokenize(request: TokenizeRequest) -> TokenResult``: the method details, once, at
      creation; only the token is stored and ``ChargeRequest.token`` carries it.
    - ``release(payment, config) -> ChargeResult``: give back an uncaptured authorization.
    - ``callback_target(request: CallbackRequest) -> CallbackTarget | None`` and
      ``read_callback(request, config) -> ChargeResult | RefundResult | None``: a PSP's
      notification, located without trust, then verified with the merchant's settings (None
      or an exception: refused, nothing changes).
    """

    name: str
    methods: frozenset[str]
    supports_partial_refund: bool
    supports_manual_capture: bool

    def charge(self, request: ChargeRequest) -> ChargeResult: ...

    def capture(self, payment: Payment, amount: int) -> ChargeResult: ...

    def refund(self, payment: Payment, refund: Refund) -> RefundResult: ...

    def sync(self, payment: Payment) -> ChargeResult: ...


@runtime_checkable
class Notifier(Protocol):
    """Delivers one event to a merchant. Must not raise for network failures: report them."""

    name: str

    def deliver(self, delivery: Delivery) -> DeliveryResult: ...


# -- plugin platform (issue 17) ----------------------------------------------------------------


@dataclass(frozen=True)
class PluginContext:
    """What a hook receives as ``context`` (plugin API 1.1): the narrow, documented view of the
    gateway a plugin may rely on, instead of the whole ``Settings``.

    ``plugin`` is the plugin's name (its entry point name, or the module for built-ins);
    ``config`` holds the operator's configuration for this plugin only: every environment
    variable ``PAYGATE_PLUGIN_<NAME>_<KEY>`` (``<NAME>`` the plugin name upper-cased with every
    character other than a letter or digit as ``_``), keyed by ``<key>`` in lower case;
    ``log`` is the logger ``paygate.plugin.<name>``; ``api_url`` and ``checkout_url`` are the
    public base URLs (a PSP's callbacks arrive under ``api_url``).
    """

    plugin: str
    test_mode: bool
    config: Mapping[str, str]
    log: logging.Logger = field(repr=False)
    api_url: str = ""
    checkout_url: str = ""
    api_version: str = ""


@dataclass(frozen=True)
class RouteRequest:
    """What a router (``paygate_route_payment``) sees about a payment being created, before
    anything is written. ``default`` is what the gateway does without a router: the merchant's
    processor, then its fallback list, in order."""

    merchant_id: str
    order_id: str
    method: str
    amount: int
    currency: str
    default: tuple[str, ...]
    checkout: bool = False
    card_network: str | None = None
    receipt: str | None = None
    notes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """A router's decision: the processors to try, in order (the first is preferred; the rest
    are used only when one before is unavailable before any money moved), and why."""

    processors: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class Event:
    """One event as an observer (``paygate_register_observers``) receives it: every event of
    every merchant, whether or not the merchant has a webhook URL, in the order they were
    recorded, at least once (an observer must tolerate a repeat of the same ``id``).

    ``body`` is the exact envelope webhooks send (``{"event", "timestamp", "data"}``);
    ``data`` is its ``data`` object; ``sequence`` is the event's number in the gateway's
    event log (unique, not gapless). Events are delivered in log order (by writing transaction,
    then sequence): the events of one payment or refund arrive in the order they happened, but
    ``sequence`` need not increase from one event to the next."""

    id: str
    type: str
    merchant_id: str
    resource_id: str | None
    created_at: datetime
    data: Mapping[str, Any]
    body: bytes = field(repr=False)
    sequence: int = 0


@runtime_checkable
class Observer(Protocol):
    """Receives every event, apart from webhooks and payments. ``observe`` returning means the
    event is done; raising means "try again later" (with back-off; the events after it wait,
    so an observer sees them in order). A slow or failing observer delays only itself."""

    name: str

    def observe(self, event: Event) -> None: ...
