"""The plugin kit: Paygate's own checks and an in-process gateway, for testing your plugin.

Install it with ``pip install 'paygate[testing]'`` (Paygate, pytest, nothing else). Paygate
registers this package as a pytest plugin (entry point ``pytest11: paygate``), so its fixtures
are there in every pytest run of an environment where Paygate is installed; importing it is
cheap and has no side effects (the gateway's modules load when a fixture first needs them), and
without pytest installed ``import paygate.testing`` still works (``Receiver``,
``register_plugin``, ``load_plugins``).

Contracts: subclass one as a ``Test...`` class, implement its ``make_...()`` method, and pytest
runs every check against your plugin:

- :class:`ProcessorContract` (``make_processor()``): processors, version 1 and 2 operations;
- :class:`WebhookTransportContract` (also named :class:`NotifierContract`;
  ``make_notifier()``): the webhook transport (``paygate_register_notifiers``);
- :class:`ObserverContract` (``make_observer()``): event observers;
- :class:`RefundPolicyContract` (``make_policy()``): refund policies.

Fixtures:

- ``paygate_settings``: gateway settings from the environment, in test mode, no delay;
- ``paygate_plugins``: what the gateway would load here (the built-ins and every installed
  plugin);
- ``paygate_database`` (session): the URL of a fresh, migrated database, created on the
  PostgreSQL server of ``DATABASE_URL`` when set, else on an embedded PostgreSQL (as
  ``paygate up`` starts it); dropped at the end of the session;
- ``paygate_gateway``: a :class:`Gateway` on that database: the real API app, services and
  worker jobs in this process (no Redis), with the installed plugins, a merchant of its own,
  and helpers to make orders, payments and refunds, run the worker's jobs
  (``run_jobs()``, ``settle()``) and read what happened (``payment()``, ``refunds()``,
  ``events()``).

Helpers: :func:`register_plugin` registers a plugin object for a ``with`` block;
:func:`load_plugins` loads plugins like the gateway; :class:`Receiver` is a real HTTP receiver
on 127.0.0.1.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..plugins import Plugins, load_plugins
from .receiver import Receiver
from .registration import register_plugin

if TYPE_CHECKING:
    from .gateway import Gateway, KitMerchant
    from .notifiers import NotifierContract, WebhookTransportContract
    from .observers import ObserverContract
    from .policies import RefundCase, RefundPolicyContract
    from .processors import (
        ProcessorContract,
        call_with_config,
        check_answer,
        check_next_action,
        check_token,
        takes_config,
    )

__all__ = [
    "Gateway",
    "KitMerchant",
    "NotifierContract",
    "ObserverContract",
    "ProcessorContract",
    "Receiver",
    "RefundCase",
    "RefundPolicyContract",
    "WebhookTransportContract",
    "call_with_config",
    "check_answer",
    "check_next_action",
    "check_token",
    "load_plugins",
    "register_plugin",
    "takes_config",
]

# Loaded on first use: the contracts need pytest, the gateway the API app and the services.
_LAZY = {
    "Gateway": "gateway",
    "KitMerchant": "gateway",
    "NotifierContract": "notifiers",
    "WebhookTransportContract": "notifiers",
    "ObserverContract": "observers",
    "RefundCase": "policies",
    "RefundPolicyContract": "policies",
    "ProcessorContract": "processors",
    "call_with_config": "processors",
    "check_answer": "processors",
    "check_next_action": "processors",
    "check_token": "processors",
    "takes_config": "processors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


# No ``__dir__`` listing the lazy names on purpose: pytest and pluggy scan this module's
# ``dir()`` for fixtures and hooks, which must not import them all.


# -- the pytest plugin (entry point ``pytest11: paygate``) -------------------------------------

try:
    import pytest
except ImportError:  # a normal install: pytest comes with ``paygate[testing]``
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def paygate_settings() -> Settings:
        """Gateway settings for plugin tests: the environment, ``TEST_MODE=true``, no delay."""
        return Settings.from_env(TEST_MODE="true", TEST_PROCESSING_DELAY="0")

    @pytest.fixture
    def paygate_plugins(paygate_settings: Settings) -> Plugins:
        """What the gateway would load here: the built-ins plus every installed plugin."""
        return load_plugins(paygate_settings)

    @pytest.fixture(scope="session")
    def paygate_database() -> Iterator[str]:
        """The URL of a fresh, migrated database for this session: on the PostgreSQL server
        of ``DATABASE_URL`` when set, else on an embedded one; dropped when the session ends."""
        from .gateway import scratch_database

        created = scratch_database()
        try:
            yield created.database_url
        finally:
            created.stop()

    @pytest.fixture
    def paygate_gateway(paygate_database: str) -> Iterator[Gateway]:
        """A gateway in this process on ``paygate_database``, with every installed plugin and
        a merchant of its own (see :class:`Gateway`); closed after the test."""
        from .gateway import Gateway

        gateway = Gateway.start(paygate_database)
        try:
            yield gateway
        finally:
            gateway.close()
