"""Paygate: a plugin-based, asynchronous payment gateway framework.

This module is the public surface a plugin needs: ``hookimpl``, the types, the errors.
"""

from __future__ import annotations

import pluggy

from . import declines
from .errors import (
    BadRequest,
    Conflict,
    NotFound,
    PaygateError,
    PluginError,
    RefundNotAllowed,
    UnknownNotifier,
    UnknownProcessor,
    ValidationFailed,
)
from .netpolicy import webhook_address_allowed, webhook_url_problem
from .types import (
    CallbackRequest,
    CallbackTarget,
    CardDetails,
    ChargeRequest,
    ChargeResult,
    Delivery,
    DeliveryResult,
    DeliveryStatus,
    MethodDetails,
    Money,
    NextAction,
    Notifier,
    Outcome,
    Payment,
    PaymentStatus,
    Processor,
    ProcessorConfig,
    ProcessorSetting,
    Refund,
    RefundDenied,
    RefundRequest,
    RefundResult,
    RefundStatus,
    TokenizeRequest,
    TokenResult,
)
from .wire import compact_json

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("paygate")

__all__ = [
    "BadRequest",
    "CallbackRequest",
    "CallbackTarget",
    "CardDetails",
    "ChargeRequest",
    "ChargeResult",
    "Conflict",
    "Delivery",
    "DeliveryResult",
    "DeliveryStatus",
    "MethodDetails",
    "Money",
    "NextAction",
    "NotFound",
    "Notifier",
    "Outcome",
    "Payment",
    "PaymentStatus",
    "PaygateError",
    "PluginError",
    "Processor",
    "ProcessorConfig",
    "ProcessorSetting",
    "Refund",
    "RefundDenied",
    "RefundNotAllowed",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "TokenResult",
    "TokenizeRequest",
    "UnknownNotifier",
    "UnknownProcessor",
    "ValidationFailed",
    "__version__",
    "compact_json",
    "declines",
    "hookimpl",
    "webhook_address_allowed",
    "webhook_url_problem",
]
