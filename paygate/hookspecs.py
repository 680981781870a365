"""The plugin API: every hook Paygate calls, with its full contract.

Plugins implement these with ``@paygate.hookimpl``. An implementation may accept any subset of a
hook's arguments (pluggy passes only what it names), so a hook can gain an argument without
breaking existing plugins. Each spec says the plugin API version that added it
(``versionadded``; ``paygate.PLUGIN_API_VERSION`` is the one this gateway implements); an
argument marked ``deprecated`` keeps working until the next major plugin API version. ``paygate.plugins`` is the only module that calls them. Every hook is
documented with its exact signature in docs/plugins.md and tested by a ``test_hook_<name>``
test in tests/plugins/; the meta-tests fail the build when either is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .config import Settings
    from .types import (
        Notifier,
        Observer,
        Payment,
        PluginContext,
        Processor,
        RefundDenied,
        RefundRequest,
        Route,
        RouteRequest,
    )

hookspec = pluggy.HookspecMarker("paygate")


@hookspec
def paygate_register_processors(
    register: Callable[[Processor], None], settings: Settings, context: PluginContext
) -> None:
    """Register payment processors.

    Call ``register(processor)`` once for each processor the plugin provides. A processor is any
    object satisfying :class:`paygate.types.Processor`. Version 1 (required): a unique ``name``
    (the registry key that merchants are routed to), ``methods`` (a non-empty set such as
    ``{"card", "upi"}``), ``supports_partial_refund``, ``supports_manual_capture``, and the
    operations ``charge(request)``, ``capture(payment, amount)``, ``refund(payment, refund)``
    and ``sync(payment)``.

    Version 2 (each optional, detected on the object; docs/plugins.md "Wrapping a PSP"):
    ``settings`` (a list or tuple of :class:`ProcessorSetting`: per-merchant values that reach
    every operation as ``config``: ``ChargeRequest.config``, ``TokenizeRequest.config``, and a
    ``config`` keyword argument to ``capture``, ``refund``, ``sync``, ``release`` and
    ``read_callback`` only when the method's signature names it, so a version 1 method is called
    exactly as before); ``currencies``, ``min_amount``, ``max_amount`` (what payment creation
    accepts); ``tokenize(request) -> TokenResult`` (the method details, once, at creation; only
    the token is stored and ``ChargeRequest.token`` carries it); ``release(payment, config)``;
    ``callback_target(request)`` and ``read_callback(request, config)`` (a PSP's notification at
    ``POST /api/v1/processors/{name}/callbacks``: located without trust, then verified).

    Operations answer :class:`ChargeResult` / :class:`RefundResult`; ``PENDING`` means "not known
    yet" and carries ``retry_after`` (seconds, > 0) or None for the worker's backoff;
    ``ChargeResult.action_required(url)`` is a pending answer that sends the buyer to ``url``.
    The worker charges once, then calls ``sync`` with the payment as the record holds it (the
    last ``processor_reference`` returned) until the outcome is final, and never guesses one; an
    exception from an operation is treated like ``PENDING`` (at tokenization: 503, nothing
    written). Every call carries a stable idempotency key (the payment or refund id): repeating a
    call must never move money twice, and a final outcome never changes. ``reference`` fits in
    255 characters.

    ``context`` (:class:`paygate.PluginContext`) is the plugin's narrow view of the gateway:
    ``context.test_mode``, ``context.config`` (the operator's ``PAYGATE_PLUGIN_<NAME>_<KEY>``
    values for this plugin only), ``context.log`` and ``context.api_url`` (where its PSP's
    callbacks arrive). Per-merchant values (credentials) are never read here: declare them in
    the processor's ``settings``.

    Registering an object that lacks part of the protocol, or two processors with one name, is a
    start-up error that names the plugin(s). Return value is ignored.

    .. versionadded:: 1.0
    .. versionchanged:: 1.1 ``context``.
    .. deprecated:: 1.1 ``settings`` (the gateway's whole :class:`paygate.config.Settings`,
       read-only): use ``context``; it is still passed to an implementation that names it.
    """


@hookspec
def paygate_register_notifiers(
    register: Callable[[Notifier], None], settings: Settings, context: PluginContext
) -> None:
    """Register notifiers (how events reach merchants).

    Call ``register(notifier)`` for each notifier; a notifier has a unique ``name`` and
    ``deliver(delivery) -> DeliveryResult``. ``deliver`` receives the exact bytes to send (and
    sign), must send them unchanged, must honour ``delivery.timeout``, must not follow redirects,
    and must report every failure (status, timeout, refused connection) in the result instead of
    raising. Every event is delivered by the notifier named ``webhook``: to replace the built-in
    one, disable it (``PAYGATE_DISABLE_PLUGINS=hmac_webhook``) and register yours under that
    name. Duplicate names fail at start-up. Return value is ignored.

    ``context`` (:class:`paygate.PluginContext`): test mode, this plugin's own configuration
    (``PAYGATE_PLUGIN_<NAME>_<KEY>``), its logger.

    .. versionadded:: 1.0
    .. versionchanged:: 1.1 ``context``.
    .. deprecated:: 1.1 ``settings`` (the gateway's whole ``Settings``): use ``context``.
    """


@hookspec(firstresult=True)
def paygate_refund_policy(
    payment: Payment,
    refund_request: RefundRequest,
    refunded_amount: int,
    settings: Settings,
    context: PluginContext,
) -> RefundDenied | None:
    """Decide whether a refund may be created. First objection wins.

    Called while the payment row is locked, after the core's own invariants hold (the payment is
    ``success``, ``refund_request.amount`` fits in the amount still available, and a processor
    without ``supports_partial_refund`` is asked for the whole amount), so a policy can neither
    allow what the core forbids nor be raced by a concurrent refund.

    ``refunded_amount`` is the sum of the payment's refunds that are ``pending`` or ``processed``.
    Return ``None`` to raise no objection, or ``RefundDenied(reason)`` to refuse: the merchant gets
    400 ``BAD_REQUEST_ERROR`` with ``reason`` as the description, and nothing is recorded.
    Policies must be fast and must not write anything: they run inside the refund transaction.
    A policy that raises is a bug: the exception is logged (ERROR, with the traceback, naming the
    plugin) and the merchant gets 503 ``SERVICE_UNAVAILABLE`` ("Refund policy <name> failed; try
    again later"), nothing recorded. Validate configuration in :func:`paygate_startup` instead.

    Scope and order (plugin API 1.1; docs/refund-policies.md): a policy is asked only about
    payments in its scope: the operator's ``PAYGATE_PLUGIN_<NAME>_MERCHANTS`` (merchant ids)
    and ``PAYGATE_PLUGIN_<NAME>_PROCESSORS`` (processor names), comma lists, ``*`` for all;
    without the latter, the plugin's own ``paygate_policy_processors`` (a set of processor
    names) if it declares one; otherwise every payment. Policies are asked in this order: those
    ``PAYGATE_REFUND_POLICY_ORDER`` names, in its order; then plugins registered at run time
    (latest first); then installed plugins by plugin name; then the built-ins. Each
    implementation is called with its own ``context``.

    ``context`` (:class:`paygate.PluginContext`) carries the policy's own configuration
    (``context.config``, from ``PAYGATE_PLUGIN_<NAME>_<KEY>``), test mode and its logger, so a
    policy is configured without reading the environment itself. pluggy passes an
    implementation only the arguments it names: a policy that needs neither leaves them out.

    .. versionadded:: 1.0
    .. versionchanged:: 1.1 ``context``; scopes and a defined order; a raising policy is a 503.
    .. deprecated:: 1.1 ``settings`` (the gateway's whole :class:`paygate.config.Settings`,
       read-only): use ``context``; it is still passed to an implementation that names it.
    """


@hookspec(firstresult=True)
def paygate_route_payment(request: RouteRequest, context: PluginContext) -> Route | None:
    """Choose the processors for a payment being created (plugin API 1.1). First answer wins.

    ``request`` carries the method, amount, currency, merchant, order (receipt, notes), and
    ``request.default``: the merchant's processor then its fallback list. Return a
    :class:`Route` (processor names in order of preference, and a short reason shown on the
    payment) or None for no opinion (the next router, else ``request.default``). Names that are
    not registered or do not take the method are skipped and recorded as such. Called in the
    API request, before anything is written: it must be fast and must not write anything.

    A router that raises, or answers something other than a ``Route`` naming a processor, is
    logged and ``request.default`` is used. A processor later in the route is used only when
    those before it were skipped or unreachable before any money moved (``tokenize`` failing,
    or ``charge`` raising :class:`paygate.ProcessorUnreachable`); the payment's ``routing``
    records every decision.

    .. versionadded:: 1.1
    """


@hookspec
def paygate_register_observers(
    register: Callable[[Observer], None], context: PluginContext
) -> None:
    """Register event observers (plugin API 1.1): each receives every event of every merchant,
    with or without a webhook URL, alongside the HTTP webhooks, at least once and in order.

    Call ``register(observer)`` for each; an observer has a unique ``name`` and
    ``observe(event)``. Each observer keeps its own position in the event log, its own retries
    and back-off; a slow or failing observer never delays payments, refunds, webhooks or other
    observers. Return value is ignored.

    .. versionadded:: 1.1
    """


@hookspec
def paygate_startup(context: PluginContext) -> None:
    """Check the plugin's own configuration once, when the gateway starts (plugin API 1.1).

    Called once per process (api, worker, dashboard, checkout, each command that loads the
    plugins) right after every plugin is loaded and the registries are filled, each
    implementation with its own ``context`` (:class:`paygate.PluginContext`): read and
    validate ``context.config`` (``PAYGATE_PLUGIN_<NAME>_<KEY>``) here, so a router or a refund
    policy, which has no registration hook, fails at start-up and not on the first payment or
    refund. Raise :class:`paygate.PluginError` with a message saying what to set (any other
    exception is reported the same way, with its type): the process does not start, and the
    one-line error names the plugin, its distribution and version, and how to start without it
    (``PAYGATE_DISABLE_PLUGINS``). ``paygate plugins`` and the look-up commands report it as a
    failed plugin instead. It must be quick and must not reach the network or write anything:
    it runs before the process serves. Return value is ignored.

    .. versionadded:: 1.1
    """
