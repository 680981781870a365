"""Registering a plugin object on a loaded plugin manager for the length of a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pluggy

from ..errors import PluginError
from ..plugins import Plugins


@contextmanager
def register_plugin(target: Any, plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or an object with ``@hookimpl`` methods) on ``target`` (the
    plugins of ``load_plugins``, a services context or a :class:`Gateway` holding them) and
    rebuild the registries; unregister it when the block ends, whatever happens. Yields the
    plugin's name."""
    target = getattr(target, "ctx", target)
    plugins: Plugins = getattr(target, "plugins", target)
    name = name or getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin):x}"
    try:
        plugins.pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r} could not be registered: {exc}") from exc
    try:
        try:
            plugins.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"unknown hook implementation: {exc}") from exc
        plugins.reload_registries()
        yield name
    finally:
        plugins.pm.unregister(plugin)
        plugins.reload_registries()
