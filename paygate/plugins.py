"""The plugin manager: loading, registries, and the one typed call site for every hook.

``DEFAULT_PLUGINS`` is the only place the core names a built-in plugin. Third-party plugins are
found through the ``paygate`` entry-point group. ``PAYGATE_DISABLE_PLUGINS`` (comma-separated
names of plugins, distributions, processors or notifiers) keeps any of them out. A plugin that
cannot be loaded or registered is a start-up error (:class:`PluginError`) that names it, its
distribution and version, and how to start without it.

A plugin may declare the plugin API it needs as a module or object attribute ``paygate_api``
(a PEP 440 specifier such as ``">=1.1,<2"``), checked against :data:`PLUGIN_API_VERSION` at
load; a plugin without one is taken as written for API 1.0, which this gateway still serves.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from . import hookspecs
from .config import Settings, plugin_env_name
from .errors import PluginError, UnknownNotifier, UnknownProcessor
from .types import (
    Notifier,
    Observer,
    Payment,
    PluginContext,
    Processor,
    ProcessorSetting,
    RefundDenied,
    RefundRequest,
    Route,
    RouteRequest,
)
from .versions import PLUGIN_API_VERSION

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "paygate.builtin.processors.testmode",
    "paygate.builtin.notifiers.hmac_webhook",
    "paygate.builtin.policies.refund_window",
)
ENTRY_POINT_GROUP = "paygate"
DEFAULT_PROCESSOR = "test"
DEFAULT_NOTIFIER = "webhook"
# The plugin API this gateway implements (paygate/versions.py; docs/plugins.md "Versions and
# compatibility"; CHANGELOG.md). A plugin declares what it needs as ``paygate_api``.
API_ATTRIBUTE = "paygate_api"
# A refund policy's default scope, declared by its author on the plugin (module or object).
POLICY_PROCESSORS_ATTRIBUTE = "paygate_policy_processors"

# The kind of plugin that implementing a hook makes (``paygate plugins`` shows it).
HOOK_KINDS = {
    "paygate_register_processors": "processor",
    "paygate_register_notifiers": "notifier",
    "paygate_refund_policy": "refund_policy",
    "paygate_route_payment": "router",
    "paygate_register_observers": "observer",
    # Start-up validation only: it makes no kind of its own (a router with it is a router).
    "paygate_startup": "",
}
# What a registered object must have, checked at start-up so a half-written plugin fails there
# and not on the first payment routed to it.
REQUIRED = {
    "processor": "name methods supports_partial_refund supports_manual_capture "
    "charge capture refund sync".split(),
    "notifier": ["name", "deliver"],
    "observer": ["name", "observe"],
}
# A per-merchant setting's name (``Processor.settings``): what ``NAME=VALUE`` and forms use.
SETTING_NAME = re.compile(r"[a-z][a-z0-9_]*")


def declared_settings(processor: Any) -> tuple[ProcessorSetting, ...]:
    """The per-merchant settings ``processor`` declares: its ``settings`` when that is a list
    or tuple (a version 1 processor may keep something else under that name, such as the
    gateway's ``Settings``: not a declaration, so none)."""
    settings = getattr(processor, "settings", None)
    return tuple(settings) if isinstance(settings, (list, tuple)) else ()


def settings_problem(processor: Any) -> str | None:
    """Why a processor's ``settings`` declaration is not well formed, or None: a list or
    tuple of ``ProcessorSetting`` with unique names matching ``[a-z][a-z0-9_]*``."""
    seen: set[str] = set()
    for item in declared_settings(processor):
        if not isinstance(item, ProcessorSetting):
            return f"settings must hold ProcessorSetting objects, got {item!r}"
        if not isinstance(item.name, str) or not SETTING_NAME.fullmatch(item.name):
            return f"setting name {item.name!r} must match [a-z][a-z0-9_]*"
        if item.name in seen:
            return f"setting {item.name!r} is declared twice"
        if item.validate is not None and not callable(item.validate):
            return f"setting {item.name!r}: validate must be a function or None"
        seen.add(item.name)
    return None


def api_requirement(plugin: object) -> str | None:
    """The plugin API ``plugin`` declares it needs (its ``paygate_api``), or None: a plugin
    without a declaration was written for API 1.0 and loads unchanged."""
    required = getattr(plugin, API_ATTRIBUTE, None)
    return None if required is None else str(required)


def api_problem(plugin: object) -> str | None:
    """Why this gateway cannot serve the plugin API ``plugin`` declares, or None: the
    declaration must be a PEP 440 specifier string (``">=1.1,<2"``) that
    :data:`PLUGIN_API_VERSION` satisfies."""
    required = getattr(plugin, API_ATTRIBUTE, None)
    if required is None:
        return None
    example = "such as '>=1.1,<2'"
    if not isinstance(required, str):
        return (
            f"declares {API_ATTRIBUTE} = {required!r}, which is not a version specifier {example}"
        )
    try:
        specifier = SpecifierSet(required)
    except InvalidSpecifier:
        return (
            f"declares {API_ATTRIBUTE} = {required!r}, which is not a version specifier {example}"
        )
    if not specifier.contains(Version(PLUGIN_API_VERSION), prereleases=True):
        return (
            f"requires plugin API {required}, but this gateway (paygate {_own_version()}) "
            f"implements plugin API {PLUGIN_API_VERSION}: install a release of the plugin "
            f"written for plugin API {PLUGIN_API_VERSION} or a Paygate that implements {required}"
        )
    return None


def distribution_of(plugin: object) -> tuple[str, str]:
    """The installed distribution (name, version) that provides ``plugin``'s module, or
    ``("", "")`` when it comes from no installed distribution (a test's object, a script)."""
    module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    top = (module or "").split(".", 1)[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "", ""


def disable_hint(name: str, dist: str = "", version: str = "") -> str:
    """The end of every message about a plugin that cannot be loaded or registered: where it
    comes from and how to start without it."""
    origin = (
        f"distribution {dist!r} {version}".rstrip()
        if dist
        else "not from an installed distribution"
    )
    return f"({origin}). Fix or uninstall it, or start without it: PAYGATE_DISABLE_PLUGINS={name}"


class RefundPolicyFailed(Exception):
    """A refund policy raised instead of answering (a bug in it): the refund is refused with
    503 ``SERVICE_UNAVAILABLE`` naming the policy (paygate/services/refunds.py), nothing is
    written. Not a :class:`paygate.errors.ServiceUnavailable`: the database is fine."""

    def __init__(self, plugin: str):
        self.plugin = plugin
        super().__init__(f"Refund policy {plugin} failed; try again later")


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or registered (``load_plugins(tolerant=True)``)."""

    name: str
    error: str
    # "load" (import, hook names), "register" (a registration hook) or "startup"
    # (paygate_startup); the plugin's hooks when known (not when it failed to import).
    stage: str = "load"
    hooks: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "error": self.error}


@dataclass(frozen=True)
class PluginInfo:
    """What ``paygate plugins`` and ``GET /api/v1/plugins`` show about one loaded plugin."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    processors: tuple[str, ...] = ()
    notifiers: tuple[str, ...] = ()
    observers: tuple[str, ...] = ()
    builtin: bool = False
    # The plugin API it declares it needs (``paygate_api``), or None: written for API 1.0.
    requires_api: str | None = None
    # A refund policy's scope in force (``Plugins.policy_scope``): merchant ids and processor
    # names, None for all; both None for a plugin without a refund policy.
    policy_merchants: tuple[str, ...] | None = None
    policy_processors: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        """``processor``, ``notifier``, ``refund_policy``, ``router``, ``observer``, or several
        joined by ``+`` (``paygate_startup`` alone makes no kind)."""
        kinds = [HOOK_KINDS.get(hook, hook) for hook in self.hooks]
        return "+".join(dict.fromkeys(k for k in kinds if k)) or "none"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": list(self.hooks),
            "processors": list(self.processors),
            "notifiers": list(self.notifiers),
            "observers": list(self.observers),
            "requires_api": self.requires_api,
            "refund_policy_scope": (
                {
                    "merchants": _listed(self.policy_merchants),
                    "processors": _listed(self.policy_processors),
                }
                if "paygate_refund_policy" in self.hooks
                else None
            ),
        }


@dataclass
class Plugins:
    """A loaded plugin manager plus the registries its registration hooks filled."""

    pm: pluggy.PluginManager
    settings: Settings
    processors: dict[str, Processor] = field(default_factory=dict)
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    observers: dict[str, Observer] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # plugin name -> "dist version"
    disabled_plugins: list[str] = field(default_factory=list)
    disabled_entries: list[str] = field(default_factory=list)  # processors/notifiers kept out
    # Plugins left out because they failed (only when loaded with ``tolerant=True``).
    failures: list[PluginFailure] = field(default_factory=list)
    tolerant: bool = False
    _owner: dict[str, str] = field(default_factory=dict)  # "processor:test" -> plugin name

    # -- typed call sites: the only code that calls pm.hook.* ---------------------------------

    def context_for(self, plugin: str) -> PluginContext:
        """The narrow view of the gateway that hooks of ``plugin`` receive as ``context``."""
        settings = self.settings
        return PluginContext(
            plugin=plugin,
            test_mode=settings.test_mode,
            config=settings.plugin_config(plugin),
            log=logging.getLogger(f"paygate.plugin.{plugin}"),
            api_url=settings.api_url,
            checkout_url=settings.checkout_url,
            api_version=PLUGIN_API_VERSION,
        )

    def _first_result(self, hook_name: str, **kwargs: Any) -> tuple[str, Any] | tuple[None, None]:
        """Call a firstresult hook's implementations one by one in pluggy's order, each with
        its own ``context``; the first non-None answer and the plugin that gave it."""
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            plugin_name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            available = {**kwargs, "context": self.context_for(plugin_name)}
            answer = impl.function(*[available[arg] for arg in impl.argnames])
            if answer is not None:
                return plugin_name, answer
        return None, None

    def route(self, request: RouteRequest) -> tuple[str, Route] | tuple[None, None]:
        """The first router's decision and the plugin that made it, or (None, None)."""
        return self._first_result("paygate_route_payment", request=request)

    def processor(self, name: str | None = None) -> Processor:
        name = name or DEFAULT_PROCESSOR
        try:
            return self.processors[name]
        except KeyError:
            raise UnknownProcessor(name, list(self.processors)) from None

    def notifier(self, name: str | None = None) -> Notifier:
        name = name or DEFAULT_NOTIFIER
        try:
            return self.notifiers[name]
        except KeyError:
            raise UnknownNotifier(name, list(self.notifiers)) from None

    def refund_policies(self) -> list[tuple[str, Any]]:
        """The refund-policy implementations as (plugin name, hook implementation), in the
        order they are asked (docs/refund-policies.md, "Order"):

        1. the plugins ``PAYGATE_REFUND_POLICY_ORDER`` names, in its order;
        2. plugins registered at run time (``extra``, ``paygate.testing.register_plugin``), in
           pluggy's order: the latest registered first, ``tryfirst``/``trylast`` honoured;
        3. installed plugins (entry points), by plugin name;
        4. the built-ins, in ``DEFAULT_PLUGINS`` order: the general rules speak last.
        """
        order = self.settings.refund_policy_order
        found = []
        # get_hookimpls() lists in reverse calling order: pluggy calls the last one first.
        for impl in reversed(self.pm.hook.paygate_refund_policy.get_hookimpls()):
            if impl.hookwrapper or getattr(impl, "wrapper", False):
                continue  # wrappers wrap a hook call; policies here are called one by one
            found.append((self.pm.get_name(impl.plugin) or repr(impl.plugin), impl))

        def rank(item: tuple[int, tuple[str, Any]]) -> tuple[int, int, str]:
            calling, (name, _) = item
            for position, wanted in enumerate(order):
                if wanted in (name, name.rsplit(".", 1)[-1]):
                    return (0, position, "")
            if name in DEFAULT_PLUGINS:
                return (3, DEFAULT_PLUGINS.index(name), "")
            if name in self.sources:
                return (2, 0, name)
            return (1, calling, "")

        return [item for _, item in sorted(enumerate(found), key=rank)]

    def policy_scope(self, plugin: str) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """The merchant ids and processor names the refund policy of ``plugin`` applies to
        (None: all). The operator's ``PAYGATE_PLUGIN_<NAME>_MERCHANTS`` / ``_PROCESSORS``
        (comma lists; ``*`` for all) win; without ``_PROCESSORS``, the plugin's own
        ``paygate_policy_processors`` declaration, if any."""
        config = self.settings.plugin_config(plugin)
        merchants = _scope(config.get("merchants"))
        processors = _scope(config.get("processors"))
        if not (config.get("processors") or "").strip():
            declared = getattr(self.pm.get_plugin(plugin), POLICY_PROCESSORS_ATTRIBUTE, None)
            processors = None if declared is None else frozenset(declared)
        return (
            None if merchants == frozenset({"*"}) else merchants,
            None if processors == frozenset({"*"}) else processors,
        )

    def refund_policy(
        self, payment: Payment, refund_request: RefundRequest, refunded_amount: int
    ) -> RefundDenied | None:
        """The first objection of the refund policies in scope for ``payment`` (its merchant
        and processor), asked in :meth:`refund_policies` order, each with its own ``context``;
        None when none objects. A policy out of scope is not called. A policy that raises is
        logged (ERROR, with the traceback, naming it) and raises :class:`RefundPolicyFailed`:
        the refund is refused, not let through unjudged."""
        for plugin_name, impl in self.refund_policies():
            merchants, processors = self.policy_scope(plugin_name)
            if merchants is not None and payment.merchant_id not in merchants:
                continue
            if processors is not None and payment.processor not in processors:
                continue
            available = {
                "payment": payment,
                "refund_request": refund_request,
                "refunded_amount": refunded_amount,
                "settings": self.settings,
                "context": self.context_for(plugin_name),
            }
            try:
                answer = impl.function(*[available[arg] for arg in impl.argnames])
            except Exception as exc:
                # A bug in the policy: refuse the refund (nothing is written) rather than
                # let it through unjudged, and name the plugin for the operator.
                log.exception("refund policy %r raised for payment %s", plugin_name, payment.id)
                raise RefundPolicyFailed(plugin_name) from exc
            if answer is not None:
                return answer
        return None

    def start(self) -> None:
        """Call every ``paygate_startup`` implementation once, each with its own ``context``,
        in pluggy's order. One that raises is a :class:`PluginError` naming the plugin, its
        distribution and version, and the disable hint; with ``tolerant`` the plugin is left
        out whole (unregistered, its registrations dropped) and recorded in ``failures``."""
        left_out = False
        already_failed = {failure.name for failure in self.failures}
        for impl in list(reversed(self.pm.hook.paygate_startup.get_hookimpls())):
            plugin_name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            if plugin_name in already_failed:
                continue  # left out by a tolerant load already (its registration failed)
            available = {"context": self.context_for(plugin_name)}
            try:
                self._call(impl, "paygate_startup", plugin_name, available)
            except PluginError as error:
                if not self.tolerant:
                    raise
                hooks = self.hooks_of(impl.plugin)
                self.pm.unregister(impl.plugin)
                self.sources.pop(plugin_name, None)
                self.failures.append(PluginFailure(plugin_name, str(error), "startup", hooks))
                left_out = True
        if left_out:
            self.reload_registries()

    def start_one(self, plugin: object, name: str, hint: str) -> None:
        """Call ``plugin``'s own ``paygate_startup`` (if it has one) with its context, as
        :meth:`start` does at a gateway's start (``paygate.testing.register_plugin``); one that
        raises is a :class:`PluginError` naming it and ending with ``hint``."""
        for impl in self.pm.hook.paygate_startup.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            self._call(impl, "paygate_startup", name, {"context": self.context_for(name)}, hint)

    def _call(
        self,
        impl: Any,
        hook_name: str,
        plugin_name: str,
        available: dict[str, Any],
        hint: str | None = None,
    ) -> Any:
        """Call one hook implementation with the arguments it names. Whatever it raises
        becomes a :class:`PluginError` naming the plugin and the hook and ending with ``hint``
        (by default the disable hint naming its distribution and version)."""
        try:
            return impl.function(*[available[arg] for arg in impl.argnames])
        except Exception as exc:
            kind_of = "" if isinstance(exc, PluginError) else f"{type(exc).__name__}: "
            hint = (
                hint if hint is not None else disable_hint(plugin_name, *self.origin(plugin_name))
            )
            raise PluginError(
                f"plugin {plugin_name!r} failed in {hook_name}: {kind_of}{exc} {hint}"
            ) from exc

    def hooks_of(self, plugin: object) -> tuple[str, ...]:
        """The hooks the registered ``plugin`` implements, by name."""
        return tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))

    def reload_registries(self) -> None:
        """Rebuild the processor and notifier registries (after registering a plugin in tests).

        Each registration hook implementation is called on its own, so every registered object
        is attributed to the plugin that registered it.
        """
        self.processors.clear()
        self.notifiers.clear()
        self.observers.clear()
        self._owner.clear()
        self.disabled_entries.clear()
        self.failures[:] = [f for f in self.failures if f.stage != "register"]
        for hook_name, registry, kind in (
            ("paygate_register_processors", self.processors, "processor"),
            ("paygate_register_notifiers", self.notifiers, "notifier"),
            ("paygate_register_observers", self.observers, "observer"),
        ):
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                plugin_name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
                kwargs = {
                    "register": self._registrar(registry, kind, plugin_name),
                    "settings": self.settings,
                    "context": self.context_for(plugin_name),
                }
                try:
                    self._call(impl, hook_name, plugin_name, kwargs)
                except PluginError as error:
                    if not self.tolerant:
                        raise
                    # Left out whole: nothing it registered before failing stays.
                    for key in [k for k, owner in self._owner.items() if owner == plugin_name]:
                        if key.startswith(f"{kind}:"):
                            registry.pop(key.split(":", 1)[1], None)
                            del self._owner[key]
                    self.failures.append(
                        PluginFailure(
                            plugin_name, str(error), "register", self.hooks_of(impl.plugin)
                        )
                    )
        for name in self.settings.disable_plugins:
            for kind, registry in (("processor", self.processors), ("notifier", self.notifiers)):
                if registry.pop(name, None) is not None:
                    self.disabled_entries.append(f"{kind}:{name}")

    def _registrar(
        self, registry: dict[str, Any], kind: str, plugin_name: str
    ) -> Callable[[Any], None]:
        def register(obj: Any) -> None:
            name = getattr(obj, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin_name!r} registered a {kind} without a name")
            missing = [attr for attr in REQUIRED[kind] if not hasattr(obj, attr)]
            if missing:
                raise PluginError(
                    f"plugin {plugin_name!r} registered {kind} {name!r} without "
                    f"{', '.join(missing)} (see docs/plugins.md)"
                )
            if kind == "processor":
                methods = obj.methods
                if (
                    isinstance(methods, str)
                    or not methods
                    or not all(isinstance(m, str) for m in methods)
                ):
                    raise PluginError(
                        f"plugin {plugin_name!r} registered processor {name!r} whose methods "
                        f"are not a non-empty set of names: {methods!r}"
                    )
                problem = settings_problem(obj)
                if problem:
                    raise PluginError(
                        f"plugin {plugin_name!r} registered processor {name!r} whose {problem} "
                        "(see docs/plugins.md, Per-merchant settings)"
                    )
            key = f"{kind}:{name}"
            if name in registry:
                raise PluginError(
                    f"{kind} {name!r} registered twice: by {self._owner[key]!r} and {plugin_name!r}"
                )
            registry[name] = obj
            self._owner[key] = plugin_name

        return register

    def origin(self, name: str) -> tuple[str, str]:
        """The distribution (name, version) of the loaded plugin ``name``, or ``("", "")``."""
        source = self.sources.get(name)
        if source:
            dist, _, version = source.partition(" ")
            return dist, version
        plugin = self.pm.get_plugin(name)
        return distribution_of(plugin) if plugin is not None else ("", "")

    def owner_of(self, kind: str, name: str) -> str | None:
        return self._owner.get(f"{kind}:{name}")

    @property
    def disabled(self) -> list[str]:
        """Everything ``PAYGATE_DISABLE_PLUGINS`` kept out: plugins, then processors/notifiers."""
        return [*self.disabled_plugins, *self.disabled_entries]

    def info(self) -> list[PluginInfo]:
        rows = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda item: item[0]):
            hooks = self.hooks_of(plugin)
            dist, _, version = self.sources.get(name, "").partition(" ")
            merchants, processors = (
                self.policy_scope(name) if "paygate_refund_policy" in hooks else (None, None)
            )
            rows.append(
                PluginInfo(
                    name=name,
                    distribution=dist,
                    version=version,
                    hooks=hooks,
                    processors=tuple(
                        p for p in self.processors if self.owner_of("processor", p) == name
                    ),
                    notifiers=tuple(
                        n for n in self.notifiers if self.owner_of("notifier", n) == name
                    ),
                    observers=tuple(
                        o for o in sorted(self.observers) if self.owner_of("observer", o) == name
                    ),
                    builtin=name in DEFAULT_PLUGINS,
                    requires_api=api_requirement(plugin),
                    policy_merchants=None if merchants is None else tuple(sorted(merchants)),
                    policy_processors=None if processors is None else tuple(sorted(processors)),
                )
            )
        return rows

    def catalog(self) -> dict[str, Any]:
        """Everything loaded, as plain JSON-ready data (the operator and dashboard view)."""
        return {
            "data": [row.as_dict() for row in self.info()],
            "processors": [
                {
                    "name": name,
                    "plugin": self.owner_of("processor", name),
                    "methods": sorted(processor.methods),
                    "supports_partial_refund": bool(processor.supports_partial_refund),
                    "supports_manual_capture": bool(processor.supports_manual_capture),
                    "default": name == DEFAULT_PROCESSOR,
                    "settings": [
                        {
                            "name": setting.name,
                            "required": bool(setting.required),
                            "secret": bool(setting.secret),
                            "description": setting.description,
                        }
                        for setting in declared_settings(processor)
                    ],
                }
                for name, processor in sorted(self.processors.items())
            ],
            "notifiers": [
                {
                    "name": name,
                    "plugin": self.owner_of("notifier", name),
                    "default": name == DEFAULT_NOTIFIER,
                }
                for name in sorted(self.notifiers)
            ],
            "observers": [
                {"name": name, "plugin": self.owner_of("observer", name)}
                for name in sorted(self.observers)
            ],
            "disabled": self.disabled,
            "failed": [failure.as_dict() for failure in self.failures],
        }


def _own_version() -> str:
    from . import __version__

    return __version__


def _listed(items: tuple[str, ...] | None) -> list[str] | str:
    """A scope as JSON shows it: the names, or ``"*"`` for all."""
    return "*" if items is None else list(items)


def _scope(value: str | None) -> frozenset[str] | None:
    """A comma list from the environment as a set; None when unset or blank."""
    items = frozenset(item.strip() for item in (value or "").split(",") if item.strip())
    return items or None


def scope_problem(plugin: object) -> str | None:
    """Why ``plugin``'s ``paygate_policy_processors`` is not a collection of processor names,
    or None (also when it declares none)."""
    declared = getattr(plugin, POLICY_PROCESSORS_ATTRIBUTE, None)
    if declared is None:
        return None
    if isinstance(declared, str | bytes) or not all(isinstance(n, str) for n in declared):
        return (
            f"declares {POLICY_PROCESSORS_ATTRIBUTE} = {declared!r}, which is not a set of "
            "processor names"
        )
    return None


def _check_policy_settings(plugins: Plugins) -> None:
    """Warn about refund-policy settings that would silently do nothing: an order naming no
    refund policy, a scope on a plugin that has none."""
    policies = [name for name, _ in plugins.refund_policies()]
    short = {name.rsplit(".", 1)[-1] for name in policies}
    unknown = [
        name for name in plugins.settings.refund_policy_order if name not in {*policies, *short}
    ]
    if unknown:
        log.warning(
            "PAYGATE_REFUND_POLICY_ORDER names %s, which %s no refund policy plugin",
            ", ".join(unknown),
            "matches" if len(unknown) == 1 else "match",
        )
    for name, _ in plugins.pm.list_name_plugin():
        config = plugins.settings.plugin_config(name)
        scoped = [key for key in ("merchants", "processors") if key in config]
        if scoped and name not in policies:
            log.warning(
                "PAYGATE_PLUGIN_%s_%s is set, but plugin %r has no refund policy to scope",
                plugin_env_name(name),
                scoped[0].upper(),
                name,
            )


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("paygate")
    pm.add_hookspecs(hookspecs)
    return pm


def _register(
    pm: pluggy.PluginManager, plugin: object, name: str, dist: str = "", version: str = ""
) -> None:
    """Register ``plugin`` under ``name`` after checking the plugin API it declares; a
    PluginError names it, its distribution and version (looked up when not given), and the
    disable hint."""

    def hint() -> str:
        return disable_hint(name, *((dist, version) if dist else distribution_of(plugin)))

    problem = api_problem(plugin) or scope_problem(plugin)
    if problem:
        raise PluginError(f"plugin {name!r} {problem} {hint()}")
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r} could not be registered: {exc} {hint()}") from exc


def _load_entry_points(plugins: Plugins, disabled: set[str]) -> set[str]:
    """Load the ``paygate`` entry points; return every plugin and distribution name seen."""
    claimed: dict[str, str] = {}  # plugin name -> distribution
    seen: set[str] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else "unknown"
        version = ep.dist.version if ep.dist else "?"
        seen |= {ep.name, dist}
        if ep.name in disabled or dist in disabled:
            plugins.disabled_plugins.append(ep.name)
            continue
        if ep.name in claimed:
            if claimed[ep.name] == dist:
                continue  # the same distribution seen twice on sys.path
            raise PluginError(
                f"plugin name {ep.name!r} is claimed by two distributions: "
                f"{claimed[ep.name]!r} and {dist!r}; uninstall one or disable it with "
                f"PAYGATE_DISABLE_PLUGINS={dist}"
            )
        claimed[ep.name] = dist
        try:
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} from distribution {dist!r} {version} failed to load: "
                    f"{exc.__class__.__name__}: {exc}. Fix or uninstall it, or start without "
                    f"it: PAYGATE_DISABLE_PLUGINS={ep.name}"
                ) from exc
            _register(plugins.pm, module, ep.name, dist, version)
        except PluginError as exc:
            if not plugins.tolerant:
                raise
            plugins.failures.append(PluginFailure(ep.name, str(exc)))
            continue
        plugins.sources[ep.name] = f"{dist} {version}"
    return seen


def load_plugins(
    settings: Settings,
    *,
    defaults: Iterable[str] = DEFAULT_PLUGINS,
    entry_points: bool = True,
    extra: Iterable[object] = (),
    tolerant: bool = False,
) -> Plugins:
    """Build the plugin manager: built-ins, then installed distributions, then ``extra``.

    A plugin that fails to import, a hook implementation whose name or arguments match no hook
    spec (a typo), a registration hook that raises, and two processors or notifiers with one
    name all raise :class:`PluginError` naming the plugin. With ``tolerant`` (``paygate
    plugins``, the commands that only need the registries to look things up) such a plugin is
    left out and recorded in ``Plugins.failures`` instead; serving processes never use it.
    """
    pm = new_plugin_manager()
    disabled = set(settings.disable_plugins)
    plugins = Plugins(pm=pm, settings=settings, tolerant=tolerant)
    known: set[str] = set()  # every name PAYGATE_DISABLE_PLUGINS could have meant
    for dotted in defaults:
        known |= {dotted, dotted.rsplit(".", 1)[-1]}
        if dotted in disabled or dotted.rsplit(".", 1)[-1] in disabled:
            plugins.disabled_plugins.append(dotted)
            continue
        try:
            try:
                module = importlib.import_module(dotted)
            except Exception as exc:
                raise PluginError(
                    f"built-in plugin {dotted!r} failed to import: {exc} "
                    + disable_hint(dotted, "paygate", _own_version())
                ) from exc
            _register(pm, module, dotted, "paygate", _own_version())
        except PluginError as exc:
            if not tolerant:
                raise
            plugins.failures.append(PluginFailure(dotted, str(exc)))
            continue
        plugins.sources[dotted] = f"paygate {_own_version()}"
    if entry_points:
        known |= _load_entry_points(plugins, disabled)
    for obj in extra:
        name = getattr(obj, "__name__", None) or type(obj).__name__
        _register(pm, obj, name)
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            error = PluginError(
                f"plugin {name!r}: unknown hook implementation: {exc} "
                + disable_hint(name, *plugins.origin(name))
            )
            if not tolerant:
                raise error from exc
            pm.unregister(exc.plugin)
            plugins.sources.pop(name, None)
            plugins.failures.append(PluginFailure(name, str(error)))
    plugins.reload_registries()
    plugins.start()
    _check_policy_settings(plugins)
    known |= {entry.split(":", 1)[1] for entry in plugins.disabled_entries}
    unmatched = disabled - known
    if unmatched:
        log.warning(
            "PAYGATE_DISABLE_PLUGINS names %s, which match no plugin, distribution, processor "
            "or notifier",
            ", ".join(sorted(unmatched)),
        )
    return plugins
