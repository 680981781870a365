"""paygate-client: the Python client of the Paygate merchant API (docs/client.md).

from paygate_client import Paygate, webhooks

client = Paygate("key_test_abc123", "secret_test_xyz789")
order = client.orders.create(amount=50000)
payment = client.payments.wait(client.payments.create(order.id, "upi", vpa="success@test").id)
"""

from . import webhooks
from ._version import __version__
from .client import USER_AGENT, Paygate
from .errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PaygateError,
    RateLimitError,
    ServiceUnavailableError,
    WaitTimeoutError,
)
from .models import (
    Circuit,
    EventFeed,
    FeedEvent,
    NextAction,
    Order,
    Page,
    Payment,
    Refund,
    WebhookConfig,
    WebhookEndpoint,
    WebhookLog,
)
from .webhooks import SignatureVerificationError

__all__ = [
    "Paygate",
    "USER_AGENT",
    "__version__",
    "webhooks",
    "SignatureVerificationError",
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
    "Order",
    "Payment",
    "NextAction",
    "Refund",
    "WebhookLog",
    "WebhookConfig",
    "WebhookEndpoint",
    "Circuit",
    "Page",
    "EventFeed",
    "FeedEvent",
]
