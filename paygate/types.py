"""The values that cross the plugin boundary: frozen dataclasses, enums and protocols. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


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
        major, minor = divmod(self.amount, 100)
        symbol = "\u20b9" if self.currency == "INR" else f"{self.currency} "
        return f"{symbol}{major:,}.{minor:02d}"


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

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.amount_refunded


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
class ChargeRequest:
    """One attempt to settle ``payment``. ``idempotency_key`` is the payment id: a processor
    that sees the same key twice must not move money twice (return the first outcome)."""

    payment: Payment
    idempotency_key: str
    attempt: int = 1


@dataclass(frozen=True)
class ChargeResult:
    """The processor's answer for a charge, a capture or a sync.

    ``PENDING`` means "not known yet": the worker will call ``sync`` after ``retry_after``
    seconds (or its own backoff) and never guesses an outcome.
    """

    outcome: Outcome
    error_code: str | None = None
    error_description: str | None = None
    reference: str | None = None
    retry_after: float | None = None

    @classmethod
    def success(cls, reference: str | None = None) -> ChargeResult:
        return cls(Outcome.SUCCESS, reference=reference)

    @classmethod
    def failed(
        cls,
        error_code: str = "PAYMENT_FAILED",
        error_description: str = "Payment processing failed",
        reference: str | None = None,
    ) -> ChargeResult:
        return cls(Outcome.FAILED, error_code, error_description, reference)

    @classmethod
    def pending(
        cls, retry_after: float | None = None, reference: str | None = None
    ) -> ChargeResult:
        return cls(Outcome.PENDING, reference=reference, retry_after=retry_after)


@dataclass(frozen=True)
class RefundResult:
    """The processor's answer for a refund; ``SUCCESS`` means the money went back."""

    outcome: Outcome
    error_code: str | None = None
    error_description: str | None = None
    reference: str | None = None
    retry_after: float | None = None

    @classmethod
    def processed(cls, reference: str | None = None) -> RefundResult:
        return cls(Outcome.SUCCESS, reference=reference)

    @classmethod
    def failed(
        cls,
        error_code: str = "REFUND_FAILED",
        error_description: str = "Refund processing failed",
        reference: str | None = None,
    ) -> RefundResult:
        return cls(Outcome.FAILED, error_code, error_description, reference)

    @classmethod
    def pending(
        cls, retry_after: float | None = None, reference: str | None = None
    ) -> RefundResult:
        return cls(Outcome.PENDING, reference=reference, retry_after=retry_after)


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
    """

    id: str
    event: str
    url: str
    body: bytes
    secret: str
    attempt: int
    timestamp: int
    timeout: float = 5.0
    allow_private: bool = False


@dataclass(frozen=True)
class DeliveryResult:
    """``ok`` is true for a 2xx answer. ``status_code`` is None when no answer came at all."""

    ok: bool
    status_code: int | None = None
    body: str = ""
    error: str | None = None


@runtime_checkable
class Processor(Protocol):
    """A payment processor: the bank, network or PSP that actually moves money.

    ``name`` is the registry key; ``methods`` the payment methods it accepts (``card``, ``upi``).
    Every operation is called with a stable idempotency key (the payment or refund id).
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
