"""Paygate: a plugin-based, asynchronous payment gateway framework.

This module is the public surface a plugin needs: ``hookimpl``, the types, the errors, and
``PLUGIN_API_VERSION`` (the plugin API this gateway implements; a plugin declares the versions
it needs as ``paygate_api = ">=1.1,<2"``).
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
    ProcessorUnreachable,
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
    Event,
    MethodDetails,
    Money,
    NextAction,
    Notifier,
    Observer,
    Outcome,
    Payment,
    PaymentStatus,
    PluginContext,
    Processor,
    ProcessorConfig,
    ProcessorSetting,
    Refund,
    RefundDenied,
    RefundRequest,
    RefundResult,
    RefundStatus,
    Route,
    RouteRequest,
    TokenizeRequest,
    TokenResult,
)
from .versions import PLUGIN_API_VERSION
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
    "Event",
    "MethodDetails",
    "Money",
    "NextAction",
    "NotFound",
    "Notifier",
    "Observer",
    "Outcome",
    "PLUGIN_API_VERSION",
    "PaygateError",
    "Payment",
    "PaymentStatus",
    "PluginContext",
    "PluginError",
    "Processor",
    "ProcessorConfig",
    "ProcessorSetting",
    "ProcessorUnreachable",
    "Refund",
    "RefundDenied",
    "RefundNotAllowed",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "Route",
    "RouteRequest",
    "TokenResult",
    "TokenizeRequest",
    "UnknownNotifier",
    "UnknownProcessor",
    "ValidationFailed",
    "compact_json",
    "declines",
    "hookimpl",
    "webhook_address_allowed",
    "webhook_url_problem",
    "__version__",
]
