"""The contract kit for plugin authors: Paygate's own checks, re-run against your plugin.

Subclass :class:`ProcessorContract` or :class:`NotifierContract` in a test module as a
``Test...`` class, implement ``make_processor()`` / ``make_notifier()``, and pytest runs every
contract test against your plugin. :func:`register_plugin` registers a plugin object on a loaded
plugin manager for the duration of a ``with`` block.

Paygate installs this package as a pytest plugin (entry point ``pytest11: paygate``), which adds
the fixtures ``paygate_settings`` and ``paygate_plugins``. Importing it is cheap and has no side
effects: it is loaded into every pytest run of an environment where Paygate is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pluggy
import pytest

from ..config import Settings
from ..errors import PluginError
from ..plugins import Plugins, load_plugins
from .notifiers import NotifierContract
from .processors import (
    ProcessorContract,
    call_with_config,
    check_answer,
    check_next_action,
    check_token,
    takes_config,
)
from .receiver import Receiver

__all__ = [
    "NotifierContract",
    "ProcessorContract",
    "Receiver",
    "call_with_config",
    "check_answer",
    "check_next_action",
    "check_token",
    "paygate_plugins",
    "paygate_settings",
    "register_plugin",
    "takes_config",
]


@contextmanager
def register_plugin(target: Any, plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or an object with ``@hookimpl`` methods) on ``target`` (a
    :class:`paygate.plugins.Plugins`, or a services context holding one) and rebuild the
    registries; unregister it when the block ends, whatever happens. Yields the plugin's name.
    """
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


# -- the pytest plugin -------------------------------------------------------------------------


@pytest.fixture
def paygate_settings() -> Settings:
    """Gateway settings for plugin tests: the environment with ``TEST_MODE=true`` and no delay."""
    return Settings.from_env(TEST_MODE="true", TEST_PROCESSING_DELAY="0")


@pytest.fixture
def paygate_plugins(paygate_settings: Settings) -> Plugins:
    """What the gateway would load here: the built-ins plus every installed plugin."""
    return load_plugins(paygate_settings)
