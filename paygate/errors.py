"""Domain exceptions: every failure the core reports, with its contract code and message.

No Falcon here. The API's error serializer maps each class to an HTTP status; this module is the
one place that owns the wording of messages (zaqar's ``transport/wsgi/errors.py`` idea).
"""

from __future__ import annotations


class PaygateError(Exception):
    """Base class. ``code`` is the contract's error code, ``description`` its human text."""

    code = "BAD_REQUEST_ERROR"
    status = 400

    def __init__(self, description: str, *, code: str | None = None, field: str | None = None):
        super().__init__(description)
        self.description = description
        if code is not None:
            self.code = code
        self.field = field


class ValidationFailed(PaygateError):
    """The request is well-formed JSON but breaks a rule (400)."""

    def __init__(self, code: str, description: str, *, field: str | None = None):
        super().__init__(description, code=code, field=field)


class BadRequest(ValidationFailed):
    """A ``BAD_REQUEST_ERROR`` with a message."""

    def __init__(self, description: str, *, field: str | None = None):
        super().__init__("BAD_REQUEST_ERROR", description, field=field)


class AuthenticationFailed(PaygateError):
    code = "AUTHENTICATION_ERROR"
    status = 401

    def __init__(self, description: str = "Invalid API credentials"):
        super().__init__(description)


class NotFound(PaygateError):
    """Missing, or owned by another merchant: both answer the same 404."""

    code = "NOT_FOUND_ERROR"
    status = 404

    @classmethod
    def of(cls, kind: str) -> NotFound:
        return cls(f"{kind} not found")


class Conflict(PaygateError):
    """The request collides with another one in flight (409)."""

    status = 409


class IdempotencyMismatch(PaygateError):
    """Same Idempotency-Key, different parameters (422, Stripe semantics)."""

    status = 422

    def __init__(self) -> None:
        super().__init__("Idempotency-Key reused with different parameters")


class InvalidIdempotencyKey(BadRequest):
    def __init__(self, max_length: int):
        super().__init__(
            f"Idempotency-Key must be 1 to {max_length} printable ASCII characters",
            field="Idempotency-Key",
        )


class PayloadTooLarge(PaygateError):
    status = 413

    def __init__(self, limit: int):
        super().__init__(f"Request body exceeds {limit} bytes")


class UnsupportedMediaType(PaygateError):
    status = 415

    def __init__(self) -> None:
        super().__init__("Content-Type must be application/json")


class RefundNotAllowed(BadRequest):
    """A refund-policy plugin objected; the description is the policy's reason."""


class ServiceUnavailable(PaygateError):
    """The database (the record) cannot be reached: nothing was accepted (503)."""

    code = "SERVICE_UNAVAILABLE"
    status = 503

    def __init__(self, description: str = "Service temporarily unavailable, retry later"):
        super().__init__(description)


class UnknownProcessor(PaygateError):
    """A merchant or a payment names a processor that is not registered (or disabled)."""

    def __init__(self, name: str, known: list[str] | None = None):
        known_text = ", ".join(sorted(known or [])) or "none"
        super().__init__(f"Unknown processor '{name}' (registered: {known_text})")
        self.name = name


class UnknownNotifier(PaygateError):
    def __init__(self, name: str, known: list[str] | None = None):
        known_text = ", ".join(sorted(known or [])) or "none"
        super().__init__(f"Unknown notifier '{name}' (registered: {known_text})")
        self.name = name


class PluginError(Exception):
    """A plugin could not be loaded or registered; raised at start-up, names the plugin."""


# Messages the contract fixes word for word.
INVALID_CREDENTIALS = "Invalid API credentials"
AMOUNT_TOO_SMALL = "amount must be at least 100"
PAYMENT_NOT_CAPTURABLE = "Payment not in capturable state"
PAYMENT_ALREADY_CAPTURED = "Payment already captured"
CAPTURE_AMOUNT_TOO_LARGE = "Capture amount exceeds payment amount"
PAYMENT_NOT_REFUNDABLE = "Payment not in refundable state"
REFUND_EXCEEDS_AVAILABLE = "Refund amount exceeds available amount"
ORDER_ALREADY_PAID = "Order already paid"  # (beyond) public checkout endpoint only
PAYMENT_FAILED_DESCRIPTION = "Payment processing failed"
PARTIAL_REFUND_NOT_SUPPORTED = "Processor '{processor}' supports full refunds only"  # (beyond)

# Webhooks (CONTRACT.md sections 3 and 5).
WEBHOOK_RETRY_SCHEDULED = "Webhook retry scheduled"
WEBHOOK_TEST_SCHEDULED = "Test webhook scheduled"
WEBHOOK_TEST_MESSAGE = "This is a test webhook from Paygate"
WEBHOOK_URL_NOT_CONFIGURED = "Webhook URL is not configured"
WEBHOOK_CONFIG_EMPTY = "webhook_url or regenerate_secret is required"

# Idempotency-Key (beyond; docs/api.md).
IDEMPOTENCY_KEY_IN_FLIGHT = "A request with this Idempotency-Key is still being processed"
