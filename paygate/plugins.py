"""The plugin manager: loading, registries, and the one typed call site for every hook.

``DEFAULT_PLUGINS`` is the only place the core names a built-in plugin. Third-party plugins are
found through the ``paygate`` entry-point group. ``PAYGATE_DISABLE_PLUGINS`` (comma-separated
plugin or processor/notifier names) keeps any of them out.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .config import Settings
from .errors import PluginError, UnknownNotifier, UnknownProcessor
from .types import Notifier, Payment, Processor, RefundDenied, RefundRequest

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.processors.testmode",
    "plugins.notifiers.hmac_webhook",
    "plugins.policies.refund_window",
)
ENTRY_POINT_GROUP = "paygate"
DEFAULT_PROCESSOR = "test"
DEFAULT_NOTIFIER = "webhook"


@dataclass(frozen=True)
class PluginInfo:
    """What ``paygate plugins`` and ``GET /api/v1/plugins`` show about one loaded plugin."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    processors: tuple[str, ...] = ()
    notifiers: tuple[str, ...] = ()


@dataclass
class Plugins:
    """A loaded plugin manager plus the registries its registration hooks filled."""

    pm: pluggy.PluginManager
    settings: Settings
    processors: dict[str, Processor] = field(default_factory=dict)
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # plugin name -> "dist version"
    _owner: dict[str, str] = field(default_factory=dict)  # "processor:test" -> plugin name

    # -- typed call sites: the only code that calls pm.hook.* ---------------------------------

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

    def refund_policy(
        self, payment: Payment, refund_request: RefundRequest, refunded_amount: int
    ) -> RefundDenied | None:
        return self.pm.hook.paygate_refund_policy(
            payment=payment, refund_request=refund_request, refunded_amount=refunded_amount
        )

    def reload_registries(self) -> None:
        """Rebuild the processor and notifier registries (after registering a plugin in tests)."""
        self.processors.clear()
        self.notifiers.clear()
        self._owner.clear()
        for hook_name, registry, kind in (
            ("paygate_register_processors", self.processors, "processor"),
            ("paygate_register_notifiers", self.notifiers, "notifier"),
        ):
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                plugin_name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
                register = self._registrar(registry, kind, plugin_name)
                kwargs = {"register": register, "settings": self.settings}
                impl.function(*[kwargs[arg] for arg in impl.argnames])
        for name in self.settings.disable_plugins:
            self.processors.pop(name, None)
            self.notifiers.pop(name, None)

    def _registrar(self, registry: dict[str, Any], kind: str, plugin_name: str):
        def register(obj: Any) -> None:
            name = getattr(obj, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin_name!r} registered a {kind} without a name")
            key = f"{kind}:{name}"
            if name in registry:
                raise PluginError(
                    f"{kind} {name!r} registered twice: by {self._owner[key]!r} and {plugin_name!r}"
                )
            registry[name] = obj
            self._owner[key] = plugin_name

        return register

    def owner_of(self, kind: str, name: str) -> str | None:
        return self._owner.get(f"{kind}:{name}")

    def info(self) -> list[PluginInfo]:
        rows = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda item: item[0]):
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            dist, _, version = self.sources.get(name, "paygate " + _own_version()).partition(" ")
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
                )
            )
        return rows


def _own_version() -> str:
    from . import __version__

    return __version__


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("paygate")
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    settings: Settings,
    *,
    defaults: Iterable[str] = DEFAULT_PLUGINS,
    entry_points: bool = True,
    extra: Iterable[object] = (),
) -> Plugins:
    """Build the plugin manager: built-ins, then installed distributions, then ``extra``.

    A plugin that fails to import raises :class:`PluginError` naming it; a hook implementation
    whose name matches no hook spec (a typo) fails ``check_pending()``.
    """
    pm = new_plugin_manager()
    disabled = set(settings.disable_plugins)
    plugins = Plugins(pm=pm, settings=settings)
    for dotted in defaults:
        short = dotted.rsplit(".", 1)[-1]
        if dotted in disabled or short in disabled:
            continue
        try:
            module = importlib.import_module(dotted)
        except Exception as exc:
            raise PluginError(f"built-in plugin {dotted!r} failed to import: {exc}") from exc
        pm.register(module, name=dotted)
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or pm.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist else "unknown"
            if dist in disabled:
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} from distribution {dist!r} failed to load: {exc}"
                ) from exc
            pm.register(module, name=ep.name)
            plugins.sources[ep.name] = f"{dist} {ep.dist.version if ep.dist else '?'}"
    for obj in extra:
        pm.register(obj)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"unknown hook implementation: {exc}") from exc
    plugins.reload_registries()
    return plugins
