"""The one way the core calls a processor (Processor API v2, issue 16).

``for_payment(ctx, payment)`` / ``for_merchant(ctx, merchant_id, processor_name)`` give a
:class:`Bound` processor: the plugin plus the merchant's values for its settings, read once
(``processor_configs.values_for``; not at all for a processor that declares no settings, so a
version 1 processor costs no query). Every operation goes through it:

- ``charge`` and ``tokenize`` get the values in their request (``ChargeRequest.config``,
  ``TokenizeRequest.config``);
- ``capture``, ``refund``, ``sync``, ``release`` and ``read_callback`` get a keyword argument
  ``config=`` only when their signature names a ``config`` parameter (or takes ``**kwargs``),
  so a version 1 method is called exactly as before. The signature is inspected once per
  function.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Any

from .. import metrics
from ..errors import ProcessorUnavailable, ProcessorUnreachable
from ..plugins import declared_settings
from ..types import (
    CallbackRequest,
    CallbackTarget,
    ChargeRequest,
    ChargeResult,
    Payment,
    ProcessorConfig,
    Refund,
    RefundResult,
    TokenizeRequest,
    TokenResult,
)
from . import Context, processor_configs

log = logging.getLogger(__name__)

# The optional operations a processor may have (``Bound.has``).
OPTIONAL_OPS = frozenset({"tokenize", "release", "callback_target", "read_callback"})

_TAKES_CONFIG: dict[Any, bool] = {}


def takes_config(method: Callable[..., Any]) -> bool:
    """Whether ``method`` names a ``config`` parameter or takes ``**kwargs`` (cached per
    underlying function, so a bound method of any instance shares the answer)."""
    key = getattr(method, "__func__", method)
    try:
        return _TAKES_CONFIG[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: inspect every time
        return _inspect_config(method)
    answer = _TAKES_CONFIG[key] = _inspect_config(method)
    return answer


def _inspect_config(method: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "config" and p.kind != inspect.Parameter.POSITIONAL_ONLY for p in parameters
    ) or any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters)


def declares_settings(processor: Any) -> bool:
    return bool(declared_settings(processor))


class Bound:
    """A processor with one merchant's configuration. ``processor`` is the raw plugin object."""

    __slots__ = ("_config", "_ctx", "merchant_id", "processor")

    def __init__(
        self,
        ctx: Context | None,
        processor: Any,
        merchant_id: str | None,
        config: ProcessorConfig | None = None,
    ) -> None:
        self._ctx = ctx
        self.processor = processor
        self.merchant_id = merchant_id
        self._config = config

    @property
    def name(self) -> str:
        return self.processor.name

    @property
    def config(self) -> ProcessorConfig:
        """The merchant's values for this processor's settings, read on first use."""
        if self._config is None:
            self.load_config()
        return self._config

    def load_config(self, conn: Any = None) -> ProcessorConfig:
        """Read the merchant's settings now (on ``conn`` when given), raising what
        ``processor_configs.values_for`` raises (required ones missing: 400; not opening:
        500); the later operations reuse them."""
        if self._ctx is None or self.merchant_id is None or not declares_settings(self.processor):
            self._config = {}
        else:
            self._config = processor_configs.values_for(
                self._ctx, self.merchant_id, self.processor.name, conn=conn
            )
        return self._config

    def has(self, op: str) -> bool:
        return callable(getattr(self.processor, op, None))

    # -- capabilities ---------------------------------------------------------------------

    @property
    def methods(self) -> frozenset[str]:
        return self.processor.methods

    @property
    def tokenizes_inline(self) -> bool:
        """The processor's ``tokenize`` runs in-process and at once (``tokenize_inline =
        True``, the test processor): called directly, without the bounded thread hop."""
        return bool(getattr(self.processor, "tokenize_inline", False))

    @property
    def currencies(self) -> frozenset[str] | None:
        value = getattr(self.processor, "currencies", None)
        return None if value is None else frozenset(c.upper() for c in value)

    @property
    def min_amount(self) -> int | None:
        return getattr(self.processor, "min_amount", None)

    @property
    def max_amount(self) -> int | None:
        return getattr(self.processor, "max_amount", None)

    # -- operations -----------------------------------------------------------------------

    def _call(self, op: str, *args: Any) -> Any:
        method = getattr(self.processor, op)
        if takes_config(method):
            return self._timed(op, method, *args, config=self.config)
        return self._timed(op, method, *args)

    def _timed(self, op: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method(...)``, observed in ``paygate_processor_call_duration_seconds``."""
        started = time.perf_counter()
        result = "error"
        try:
            answer = method(*args, **kwargs)
            result = "ok"
            return answer
        finally:
            metrics.PROCESSOR_CALL_SECONDS.labels(self.processor.name, op, result).observe(
                time.perf_counter() - started
            )

    def tokenize(self, request: TokenizeRequest) -> TokenResult:
        config = self.config
        if config and not request.config:  # no copy of the request when there is nothing to add
            request = replace(request, config=config)
        return self._timed("tokenize", self.processor.tokenize, request)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        config = self.config
        if config and not request.config:
            request = replace(request, config=config)
        return self._timed("charge", self.processor.charge, request)

    def sync(self, payment: Payment) -> ChargeResult:
        return self._call("sync", payment)

    def capture(self, payment: Payment, amount: int) -> ChargeResult:
        return self._call("capture", payment, amount)

    def refund(self, payment: Payment, refund: Refund) -> RefundResult:
        return self._call("refund", payment, refund)

    def release(self, payment: Payment) -> ChargeResult:
        return self._call("release", payment)

    def callback_target(self, request: CallbackRequest) -> CallbackTarget | None:
        return self.processor.callback_target(request)

    def read_callback(self, request: CallbackRequest) -> ChargeResult | RefundResult | None:
        return self._call("read_callback", request)


# -- tokenize with a bound on time ----------------------------------------------------------

TOKENIZE_THREADS = 8
# Retry-After of a 503 when tokenize did not answer: the processor may be back soon.
TOKENIZE_RETRY_AFTER = 5


class _Pool:
    """A few daemon threads that run processor calls a request waits for with a timeout. A
    call that hangs holds one thread, never the request, and never blocks the process's exit
    (which a ``ThreadPoolExecutor``'s threads would)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.started = 0
        self.lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        self.jobs.put((future, fn, args))
        if self.started < self.size:
            with self.lock:
                if self.started < self.size:
                    self.started += 1
                    threading.Thread(
                        target=self._run, name=f"paygate-processor-{self.started}", daemon=True
                    ).start()
        return future

    def _run(self) -> None:
        while True:
            future, fn, args = self.jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the waiting request
                future.set_exception(exc)


_POOL = _Pool(TOKENIZE_THREADS)


class TokenizeUnavailable(ProcessorUnavailable):
    """A processor's ``tokenize`` gave no usable answer (503, retry-safe: tokenize never moves
    money, so the payment may also go to the next processor of its route). ``processor`` and
    ``reason`` say which and why, for the payment's routing record (never the method
    details)."""

    def __init__(self, processor: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(TOKENIZE_RETRY_AFTER if retry_after is None else int(retry_after))
        self.processor = processor
        self.reason = reason


def tokenize(ctx: Context, bound: Bound, request: TokenizeRequest) -> TokenResult:
    """``bound.tokenize(request)`` within ``PAYGATE_TOKENIZE_TIMEOUT_SECONDS``: the processor's
    answer (a token or a refusal), or TokenizeUnavailable (a ProcessorUnavailable: 503,
    retry-safe) when it raised (``ProcessorUnreachable``: its reason and ``retry_after``), did
    not answer in time, or answered something that is not a TokenResult. ``reason`` is the
    processor's own (``ProcessorUnreachable.reason``) without an "unreachable" prefix: the
    routing record's ``outcome`` says that. Nothing of the method details is logged: only the
    processor's name and the kind of failure, in one WARNING line that gives no verdict on the
    payment (the next processor of its route may take it: the caller logs the outcome)."""
    try:
        if bound.tokenizes_inline:
            result = bound.tokenize(request)
        else:
            future = _POOL.submit(bound.tokenize, request)
            try:
                result = future.result(timeout=ctx.settings.tokenize_timeout_seconds)
            except FutureTimeout:
                future.cancel()
                log.warning(
                    "tokenize by processor %s for payment %s: no answer within %ss",
                    bound.name,
                    request.idempotency_key,
                    ctx.settings.tokenize_timeout_seconds,
                )
                raise TokenizeUnavailable(
                    bound.name,
                    f"no answer within {ctx.settings.tokenize_timeout_seconds:g} s",
                ) from None
    except ProcessorUnavailable:
        raise
    except ProcessorUnreachable as exc:
        log.warning(
            "tokenize by processor %s for payment %s: unreachable (%s)",
            bound.name,
            request.idempotency_key,
            exc.reason,
        )
        raise TokenizeUnavailable(bound.name, exc.reason, exc.retry_after) from None
    except Exception as exc:
        log.warning(
            "tokenize by processor %s for payment %s failed (%s)",
            bound.name,
            request.idempotency_key,
            type(exc).__name__,
        )
        raise TokenizeUnavailable(bound.name, f"failed ({type(exc).__name__})") from None
    token = getattr(result, "token", None)
    if not isinstance(result, TokenResult) or (
        token is not None and (not isinstance(token, str) or not 0 < len(token) <= 255)
    ):
        log.error("tokenize by processor %s answered no usable TokenResult", bound.name)
        raise TokenizeUnavailable(bound.name, "answered no usable TokenResult")
    return result


def for_merchant(ctx: Context, merchant_id: str, processor_name: str) -> Bound:
    """``processor_name`` bound to ``merchant_id``'s settings (UnknownProcessor when it is not
    loaded)."""
    return Bound(ctx, ctx.plugins.processor(processor_name), merchant_id)


def for_payment(ctx: Context, payment: Payment) -> Bound:
    """The payment's processor bound to its merchant's settings."""
    return for_merchant(ctx, payment.merchant_id, payment.processor)
