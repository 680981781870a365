"""Shared set-up: the test tiers, and real PostgreSQL and Redis (the machine's, or embedded)
started lazily, by the first test that needs them (``paygate_services`` in tests/fixtures.py).

Tiers (pytest markers, registered in pyproject.toml):

- ``unit``: no server, no subprocess of ours; runs in seconds (``scripts/test --unit``).
- ``integration``: in-process against real PostgreSQL and Redis.
- ``e2e``: real gunicorn and Huey consumer processes. ``browser``: Chromium through Playwright.
  ``chaos``: fault injection.

A test marked ``e2e``, ``browser`` or ``chaos`` (by itself or its module; everything under
tests/browser is ``browser``) keeps that tier. Every other test gets one here: ``integration`` when it uses the
``paygate_services`` fixture (directly or through ``clean``, ``ctx``, ``api``...), ``unit``
otherwise. A unit test that reaches PostgreSQL or Redis anyway fails with a message saying so,
rather than finding a server.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e", "browser", "chaos")
SERVERS_FIXTURE = "paygate_services"
BROWSER_DIR = Path(__file__).resolve().parent / "browser"


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_configure(config):
    if os.environ.get("PAYGATE_TESTS_CHILD"):
        return
    # A run stopped with SIGTERM (a timeout, a cancelled CI job) ends like Ctrl-C: fixtures tear
    # down, so the gateways they started in their own sessions and the embedded servers stop.
    signal.signal(signal.SIGTERM, _interrupt)
    os.environ.setdefault("PAYGATE_ALLOW_PRIVATE_WEBHOOKS", "true")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROWSER_DIR in Path(item.path).resolve().parents:
            item.add_marker("browser")
        tiers = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        needs_servers = SERVERS_FIXTURE in getattr(item, "fixturenames", ())
        if "unit" in tiers and needs_servers:
            raise pytest.UsageError(
                f"{item.nodeid} is marked unit but uses servers (the {SERVERS_FIXTURE} fixture)"
            )
        if not tiers:
            item.add_marker("integration" if needs_servers else "unit")


@pytest.fixture(autouse=True)
def _unit_tests_reach_no_server(request, monkeypatch):
    """A unit test gets no DATABASE_URL/REDIS_URL, and any connection attempt raises."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*args, **kwargs):
        raise RuntimeError(
            f"{request.node.nodeid} is a unit test but tried to reach PostgreSQL or Redis: "
            f"use a fixture that needs servers (e.g. {SERVERS_FIXTURE}, clean, ctx, api), "
            "which makes it an integration test"
        )

    import psycopg
    import redis.connection

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(refuse))
    monkeypatch.setattr(redis.connection.AbstractConnection, "connect", refuse)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)


pytest_plugins = ["tests.fixtures"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from tests.fixtures import SERVICES

    services = config.stash.get(SERVICES, None)
    if services is None:
        terminalreporter.write_line("paygate services: none started")
    else:
        kind = "embedded" if services.is_embedded else "external"
        terminalreporter.write_line(
            f"paygate services: {kind} (database {services.database_name}, "
            f"redis {services.redis_url})"
        )
