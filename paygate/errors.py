"""Domain exceptions: every failure the core reports, with its contract code and message.

No Falcon here. The API's error serializer maps each class to an HTTP status; this module is the
one place that owns the wording of messages (zaqar's ``transport/wsgi/errors.py`` idea).
"""

from __future__ import annotations

# -- Messages: the one place the wording lives. Templates take ``str.format`` fields. ----------

# The contract fixes these word for word (CONTRACT.md sections 1-3).
INVALID_CREDENTIALS = "Invalid API credentials"
METRICS_TOKEN_REQUIRED = "Metrics need Authorization: Bearer <PAYGATE_METRICS_TOKEN>"
AMOUNT_TOO_SMALL = "amount must be at least 100"
PAYMENT_NOT_CAPTURABLE = "Payment not in capturable state"
PAYMENT_ALREADY_CAPTURED = "Payment already captured"
CAPTURE_AMOUNT_TOO_LARGE = "Capture amount exceeds payment amount"
PAYMENT_NOT_REFUNDABLE = "Payment not in refundable state"
REFUND_EXCEEDS_AVAILABLE = "Refund amount exceeds available amount"
NOT_FOUND = "{kind} not found"  # Order, Payment, Refund, Webhook log (and Merchant)
PAYMENT_FAILED_DESCRIPTION = "Payment processing failed"
VPA_INVALID = "Invalid VPA format"
CARD_NUMBER_INVALID = "Invalid card number"
CARD_EXPIRY_INVALID = "Invalid card expiry date"
CARD_EXPIRED = "Card has expired"

# Request bodies and fields.
BODY_NOT_OBJECT = "{what} must be a JSON object"
BODY_NOT_JSON = "Request body is not valid JSON"
BODY_TOO_DEEP = "Request body is nested deeper than {limit} levels"
BODY_TOO_LARGE = "Request body exceeds {limit} bytes"
BODY_NOT_JSON_TYPE = "Content-Type must be application/json"
UNKNOWN_FIELD = "Unknown field: {field}"
FIELD_REQUIRED = "{field} is required"
FIELD_NOT_STRING = "{field} must be a string"
FIELD_TOO_LONG = "{field} must be at most {max_length} characters"
FIELD_NOT_SHORT_STRING = "{field} must be a string of at most {max_length} characters"
FIELD_HAS_NUL = "{field} must not contain NUL characters"
FIELD_NOT_PAISE = "{field} must be an integer number of paise"
FIELD_BELOW_MINIMUM = "{field} must be at least {minimum}"
FIELD_ABOVE_MAXIMUM = "{field} must be at most {maximum}"
FIELD_NOT_INTEGER = "{field} must be an integer"
FIELD_OUT_OF_RANGE = "{field} must be between {low} and {high}"
FIELD_RANGE_REVERSED = "{low} must not be greater than {high}"
FIELD_NOT_MOMENT = "{field} must be unix seconds or an ISO-8601 date"
FIELD_NOT_ONE_OF = "{field} must be one of: {choices}"
FIELD_NOT_WITH_METHOD = "{field} is not used with method {method}"
CURRENCY_INVALID = "currency must be a three-letter ISO 4217 code such as INR"
NOTES_NOT_OBJECT = "notes must be an object of key-value pairs"
NOTES_TOO_MANY = "notes can have at most {count} keys"
NOTES_KEY_TOO_LONG = "notes keys must be at most {max_length} characters, without NUL"
NOTES_VALUE_TOO_LONG = "notes values must be at most {max_length} characters, without NUL"
NOTES_VALUE_TYPE = "notes values must be strings, integers or booleans"
NOTES_NUMBER_TOO_LARGE = "notes numbers are too large"

# Payments, cards, refunds.
ORDER_ALREADY_PAID = "Order already paid"  # (beyond) public checkout endpoint only
PAYMENT_ALREADY_PENDING = (  # public checkout endpoint only
    "A payment for this order is already being processed. Wait for its result before trying again."
)
DUPLICATE_PAYMENT_REFUND_REASON = "duplicate payment for a paid order"  # automatic refunds
PAYMENT_METHOD_NOT_SUPPORTED = "Payment method {method} is not supported"
CAPTURE_FAILED = "Capture failed at the processor"
# Capture and release (issue 16).
CAPTURE_BELOW_REFUNDED = "Capture amount is less than the amount already refunded"
CAPTURE_IN_PROGRESS = (
    "A capture or release of this payment is still pending at the processor; "
    "read the payment again later"
)
PAYMENT_RELEASED = "Payment authorization was released"
REFUND_BEFORE_CAPTURE = (
    "Payment is authorized but not captured: capture it first (refunds fit in the captured "
    "amount), or release the authorization"
)
PAYMENT_NOT_RELEASABLE = "Payment not in releasable state"
RELEASE_NOT_SUPPORTED = "Processor '{processor}' cannot release an authorization"
RELEASE_FAILED_DESCRIPTION = "Release failed at the processor"
CAPTURE_PENDING_NOTICE = (
    "Capture sent; the processor has not confirmed it yet. Paygate asks again until it knows."
)
REFUND_WHILE_CAPTURE_PENDING = (
    "A capture of this payment is still pending at the processor; refund after it is known"
)
CARD_REQUIRED = "card details are required for method card"
CVV_INVALID = "cvv must be 3 or 4 digits"
PARTIAL_REFUND_NOT_SUPPORTED = "Processor '{processor}' supports full refunds only"  # (beyond)
REFUND_FAILED_DESCRIPTION = "Refund processing failed"
UNKNOWN_PROCESSOR = "Unknown processor '{name}' (registered: {known})"
PROCESSOR_DISABLED = (
    "Processor '{name}' is disabled by PAYGATE_DISABLE_PLUGINS (registered: {known})"
)
UNKNOWN_NOTIFIER = "Unknown notifier '{name}' (registered: {known})"

# Webhooks (CONTRACT.md sections 3 and 5).
WEBHOOK_RETRY_SCHEDULED = "Webhook retry scheduled"
WEBHOOK_TEST_SCHEDULED = "Test webhook scheduled"
WEBHOOK_TEST_MESSAGE = "This is a test webhook from Paygate"
WEBHOOK_URL_NOT_CONFIGURED = "Webhook URL is not configured"
WEBHOOK_CONFIG_EMPTY = "webhook_url or regenerate_secret is required"
WEBHOOK_URL_REFUSED = "webhook_url {problem}"
REGENERATE_SECRET_NOT_BOOLEAN = "regenerate_secret must be true or false"
# Several webhook endpoints (issue 17; docs/webhooks.md, "Several endpoints").
ENDPOINT_URL_REQUIRED = "url is required"
ENDPOINT_URL_REFUSED = "url {problem}"
ENDPOINT_EVENTS_INVALID = "events must be a list of event names (empty: every event)"
ENDPOINT_EVENT_UNKNOWN = "Unknown event: {event} (known: {known})"
ENDPOINT_ENABLED_NOT_BOOLEAN = "enabled must be true or false"
ENDPOINT_UPDATE_EMPTY = "Nothing to update: give url, events, description or enabled"
ENDPOINT_LIMIT_REACHED = (
    "A merchant can have at most {limit} webhook endpoints besides the primary webhook_url; "
    "delete one first"
)
ENDPOINT_IS_PRIMARY = (
    "The primary endpoint is the merchant's webhook_url: change it or its secret with "
    "POST /api/v1/webhooks/config"
)
ENDPOINT_DISABLED = "Webhook endpoint is disabled"
NO_WEBHOOK_URL = "No webhook URL configured"  # a delivery ended unsent (its response body)
ENDPOINT_DELETED = "Webhook endpoint was deleted"
ENDPOINT_TEST_SCHEDULED = "Test webhook scheduled for this endpoint"
ENDPOINT_FORM_USED = "That endpoint was already added: it is in the list below."

# Idempotency-Key (beyond; docs/api.md).
IDEMPOTENCY_KEY_INVALID = "Idempotency-Key must be 1 to {max_length} printable ASCII characters"
IDEMPOTENCY_KEY_REUSED = "Idempotency-Key reused with different parameters"
IDEMPOTENCY_KEY_IN_FLIGHT = "A request with this Idempotency-Key is still being processed"

# Sign-in and passwords (dashboard).
INVALID_SIGN_IN = "Invalid email or password"
TOO_MANY_SIGN_INS = "Too many failed sign-ins. Try again in {wait}."
TOO_MANY_WEBHOOK_SENDS = (
    "Too many webhook tests and retries (at most {count} every {window} seconds). "
    "Try again in {seconds} seconds."
)
PASSWORD_TOO_COMMON = (
    "This password is one of the most common passwords. Choose one that is harder to guess."
)
PASSWORD_INCORRECT = "Current password is incorrect"
PASSWORD_TOO_SHORT = "Password must be at least {length} characters"
PASSWORD_TOO_LONG = "Password must be at most {length} characters"
PASSWORDS_DIFFER = "The two passwords do not match"

# Merchants and API keys (the CLI and the dashboard)
MERCHANT_NAME_INVALID = "name is required (at most {max_length} printable characters)"
MERCHANT_EMAIL_INVALID = "email must be an address like shop@example.com"
MERCHANT_EMAIL_TAKEN = "A merchant with email {email} already exists"
OVERLAP_INVALID = (
    "overlap must be a duration from 0 to {max_days} days, in seconds or like 90s, 15m, 24h, 7d"
)
PASSWORD_INPUT_MISSING = "No password given: type it at the prompt or pipe it on stdin"
API_KEY_CREATED = "New API key created. Copy the secret now: it is shown only this once."
API_KEY_NOT_LIVE = "{key} is not a live API key of {email}"
API_KEY_IS_CURRENT = (
    "{key} is the current API key of {email}: issue a new one first (rotate-key), then revoke "
    "this one"
)

# Dashboard and checkout forms and pages.
FORM_AMOUNT_INVALID = "Enter an amount in rupees greater than ₹0.00, like 250.00"
FILTER_AMOUNT_INVALID = "Enter amounts in rupees greater than ₹0.00, like 500.50"
FILTER_AMOUNTS_REVERSED = "The minimum amount must not be more than the maximum amount"
FILTER_DATE_INVALID = "Enter dates as YYYY-MM-DD, like 2024-01-31"
FILTER_DATES_REVERSED = "The start date must not be after the end date"
REFUND_FORM_USED = "That refund form was already used. Check the refunds below before trying again."
FORM_NOT_FROM_PAGE = "This form must be sent by the page itself."
FORM_TOO_LARGE = "The form is too large."
FORM_UNREADABLE = "The form could not be read."
FORM_EXPIRED = (
    "This form has expired or did not come from this dashboard. Reload the page and try again."
)
CHECKOUT_KEY_MISMATCH = "Key does not match the order's merchant"

# The API's own answers (paygate/api/errors.py) and the record's availability.
URL_NOT_FOUND = "The requested URL was not found"
METHOD_NOT_ALLOWED = "Method not allowed on this URL"
INTERNAL_ERROR = "Internal server error"
SERVICE_UNAVAILABLE = "Service temporarily unavailable, retry later"
DATABASE_UNREACHABLE = "cannot connect to the database: {reason}"
WEBHOOK_SECRET_UNREADABLE = (
    "The webhook secret cannot be decrypted (the server key changed, or the stored value was "
    "altered); regenerate it"
)
RATE_LIMITED_MESSAGE = "Too many requests. Try again in {seconds} seconds."
# The events feed (issue 19; GET /api/v1/events/feed, `paygate listen`).
EVENTS_CURSOR_INVALID = (
    "after must be a cursor returned by this endpoint (omit it to start at the head of the log)"
)
# Per-merchant processor settings (issue 16; docs/operations.md, "Processor settings").
PROCESSOR_SETTING_UNKNOWN = "Processor '{processor}' has no setting '{name}' (it has: {known})"
PROCESSOR_SETTING_REQUIRED = (
    "Processor '{processor}' needs these settings for merchant {merchant}: {names}"
)
PROCESSOR_SETTING_INVALID = "Setting '{name}' of processor '{processor}': {problem}"
PROCESSOR_SETTING_NOT_TEXT = "must be text of at most {max_length} characters, without NUL"
PROCESSOR_SETTING_ASSIGNMENT = "Expected NAME=VALUE, got {text!r}"
PROCESSOR_SETTING_ENV_MISSING = "Environment variable {variable} (for setting {name}) is not set"
PROCESSOR_NOT_CONFIGURED = (
    "Payments cannot be created: this merchant's processor '{processor}' is missing required "
    "settings ({names}); set them in the dashboard's Processor page or with `paygate "
    "processors configure`"
)
PROCESSOR_CONFIG_UNREADABLE = (
    "The settings of processor '{processor}' for this merchant cannot be decrypted (sealed "
    "under key '{key_id}', which PAYGATE_ENCRYPTION_KEYS does not hold or which does not open "
    "them): the operation is refused"
)

# Processor API v2 (issue 16): capabilities, tokenization, buyer actions, callbacks.
PROCESSOR_CURRENCY_NOT_SUPPORTED = "Currency {currency} is not supported by processor '{processor}'"
PROCESSOR_AMOUNT_TOO_SMALL = (
    "Amount {amount} is below the minimum of {minimum} for processor '{processor}'"
)
PROCESSOR_AMOUNT_TOO_LARGE = (
    "Amount {amount} is above the maximum of {maximum} for processor '{processor}'"
)
PROCESSOR_NOT_FOUND = "Processor '{name}' not found"
PROCESSOR_TAKES_NO_CALLBACKS = "Processor '{name}' does not take callbacks"
CALLBACK_NOT_VERIFIED = "Callback could not be verified"
TOKENIZE_REFUSED = "The payment method was refused by the processor"
PROCESSOR_UNAVAILABLE = (
    "The payment processor could not be reached, nothing was created; retry later"
)


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

    def __init__(self, description: str = INVALID_CREDENTIALS):
        super().__init__(description)


class NotFound(PaygateError):
    """Missing, or owned by another merchant: both answer the same 404."""

    code = "NOT_FOUND_ERROR"
    status = 404

    @classmethod
    def of(cls, kind: str) -> NotFound:
        return cls(NOT_FOUND.format(kind=kind))


class Conflict(PaygateError):
    """The request collides with another one in flight (409)."""

    status = 409


class RateLimited(PaygateError):
    """Over an abuse limit (429): ``retry_after`` seconds until the window ends (the API sends
    it as ``Retry-After``)."""

    code = "RATE_LIMITED"
    status = 429

    def __init__(self, retry_after: int, description: str | None = None):
        self.retry_after = max(1, int(retry_after))
        super().__init__(description or RATE_LIMITED_MESSAGE.format(seconds=self.retry_after))


class IdempotencyMismatch(PaygateError):
    """Same Idempotency-Key, different parameters (422, Stripe semantics)."""

    status = 422

    def __init__(self) -> None:
        super().__init__(IDEMPOTENCY_KEY_REUSED)


class InvalidIdempotencyKey(BadRequest):
    def __init__(self, max_length: int):
        super().__init__(
            IDEMPOTENCY_KEY_INVALID.format(max_length=max_length),
            field="Idempotency-Key",
        )


class PayloadTooLarge(PaygateError):
    status = 413

    def __init__(self, limit: int):
        super().__init__(BODY_TOO_LARGE.format(limit=limit))


class UnsupportedMediaType(PaygateError):
    status = 415

    def __init__(self) -> None:
        super().__init__(BODY_NOT_JSON_TYPE)


class RefundNotAllowed(BadRequest):
    """A refund-policy plugin objected; the description is the policy's reason."""


class ServiceUnavailable(PaygateError):
    """The database (the record) cannot be reached: nothing was accepted (503)."""

    code = "SERVICE_UNAVAILABLE"
    status = 503

    def __init__(self, description: str = SERVICE_UNAVAILABLE):
        super().__init__(description)


class ProcessorUnavailable(ServiceUnavailable):
    """A processor did not answer in time (or failed) while the caller waits for it; nothing
    was written, the same request may be sent again (503 with ``Retry-After``)."""

    def __init__(self, retry_after: int = 5, description: str = PROCESSOR_UNAVAILABLE):
        self.retry_after = max(1, int(retry_after))
        super().__init__(description)


class ProcessorDeclined(BadRequest):
    """A processor refused (a tokenization, a capture): 400 ``BAD_REQUEST_ERROR`` with the
    processor's description, and its decline code as ``reason`` in the error object."""

    def __init__(self, reason: str, description: str, *, field: str | None = None):
        super().__init__(description, field=field)
        self.reason = reason


class SecretUnreadable(PaygateError):
    """A sealed secret failed authentication: the server key is not the one it was sealed
    with, or the stored value was altered or moved to another merchant. Never used as is."""

    code = "SERVER_ERROR"
    status = 500

    def __init__(self, description: str = WEBHOOK_SECRET_UNREADABLE):
        super().__init__(description)


class ProcessorNotConfigured(PaygateError):
    """The merchant's processor lacks required settings: what needs it is refused (400)."""

    def __init__(self, processor: str, missing: list[str]):
        super().__init__(
            PROCESSOR_NOT_CONFIGURED.format(processor=processor, names=", ".join(missing))
        )
        self.processor = processor
        self.missing = tuple(missing)


class ProcessorConfigUnreadable(PaygateError):
    """Stored processor settings do not open with any configured key (wrong or missing key,
    altered, or moved to another merchant or processor). Never used as is: refused (500)."""

    code = "SERVER_ERROR"
    status = 500

    def __init__(self, processor: str, key_id: str):
        super().__init__(PROCESSOR_CONFIG_UNREADABLE.format(processor=processor, key_id=key_id))
        self.processor = processor
        self.key_id = key_id


class UnknownProcessor(PaygateError):
    """A merchant or a payment names a processor that is not registered (or disabled)."""

    def __init__(self, name: str, known: list[str] | None = None):
        known_text = ", ".join(sorted(known or [])) or "none"
        super().__init__(UNKNOWN_PROCESSOR.format(name=name, known=known_text))
        self.name = name


class UnknownNotifier(PaygateError):
    def __init__(self, name: str, known: list[str] | None = None):
        known_text = ", ".join(sorted(known or [])) or "none"
        super().__init__(UNKNOWN_NOTIFIER.format(name=name, known=known_text))
        self.name = name


class PluginError(Exception):
    """A plugin could not be loaded or registered; raised at start-up, names the plugin."""


class ProcessorUnreachable(Exception):
    """Raised by a processor's ``tokenize`` or ``charge`` when its PSP cannot be reached and the
    request provably moved no money (the connection was refused, the PSP answered "down" before
    accepting it). The gateway then tries the next processor of the payment's route (the
    merchant's fallback list or a router's), records why, and logs one WARNING line, no
    traceback. ``retry_after`` (seconds) says when this processor may be tried again.

    Raise it only when nothing reached the PSP: after a timeout the charge may have been taken,
    so a timeout is an ordinary exception (the worker then asks ``sync``, never charges twice).
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
