"""Registering a plugin object on a loaded plugin manager for the length of a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pluggy

from ..errors import PluginError
from ..plugins import Plugins, api_problem, disable_hint, distribution_of, scope_problem


@contextmanager
def register_plugin(target: Any, plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or an object with ``@hookimpl`` methods) on ``target`` (the
    plugins of ``load_plugins``, a services context or a :class:`Gateway` holding them) and
    rebuild the registries; unregister it when the block ends, whatever happens. Yields the
    plugin's name.

    It is checked as the gateway's loader checks it: a plugin declaring a ``paygate_api`` this
    Paygate does not implement (or a malformed ``paygate_policy_processors``), a hook
    implementation that matches no hook specification, a name already taken, or a
    ``paygate_startup`` that raises (it is called once, as at a gateway's start) raise
    :class:`paygate.PluginError` naming the plugin, its distribution and the disable hint, and
    leave nothing registered."""
    target = getattr(target, "ctx", target)
    plugins: Plugins = getattr(target, "plugins", target)
    name = name or getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin):x}"

    def hint() -> str:
        return disable_hint(name, *distribution_of(plugin))

    problem = api_problem(plugin) or scope_problem(plugin)
    if problem:
        raise PluginError(f"plugin {name!r} {problem} {hint()}")
    try:
        plugins.pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r} could not be registered: {exc} {hint()}") from exc
    try:
        try:
            plugins.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin {name!r}: unknown hook implementation: {exc} {hint()}"
            ) from exc
        plugins.reload_registries()
        plugins.start_one(plugin, name, hint())
        yield name
    finally:
        plugins.pm.unregister(plugin)
        plugins.reload_registries()
