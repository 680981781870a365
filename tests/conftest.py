"""Shared set-up: the test tiers, and real PostgreSQL and Redis (the machine's, or embedded)
started lazily, by the first test that needs them (``paygate_services`` in tests/fixtures.py).

Tiers (pytest markers, registered in pyproject.toml):

- ``unit``: no PostgreSQL, Redis, gateway or browser; the tier runs in seconds
  (``scripts/test --unit``).
- ``integration``: in-process against real PostgreSQL and Redis.
- ``e2e``: real gunicorn and Huey consumer processes. ``browser``: Chromium through Playwright.
  ``chaos``: fault injection.

A test marked ``e2e``, ``browser`` or ``chaos`` (by itself or its module; everything under
tests/browser is ``browser``) keeps that tier. Every other test gets one here:
``integration`` when it uses the ``paygate_services`` fixture (directly or through ``clean``,
``ctx``, ``api``...), ``unit`` otherwise. A unit test that reaches PostgreSQL or Redis anyway
fails with a message saying so, rather than finding a server.
"""

from __future__ import annotations

import os
import secrets
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
    # Concurrent test runs may share one Redis: each gets its own queue and heartbeat keys. Set
    # before any test (no server needed), so an early import of paygate.jobs gets it too.
    os.environ["PAYGATE_QUEUE"] = f"paygate-test-{secrets.token_hex(4)}"


def tier_to_add(marks: set[str], fixtures: set[str], path: Path) -> str | None:
    """The tier marker a test still needs (None when it has one), from its markers, the
    fixtures it uses (transitively) and where it lives."""
    if BROWSER_DIR in path.resolve().parents:
        return None if "browser" in marks else "browser"
    needs_servers = SERVERS_FIXTURE in fixtures
    if "unit" in marks and needs_servers:
        raise pytest.UsageError(f"marked unit but uses servers (the {SERVERS_FIXTURE} fixture)")
    if marks & set(TIERS):
        return None
    return "integration" if needs_servers else "unit"


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        try:
            tier = tier_to_add(marks, set(getattr(item, "fixturenames", ())), Path(item.path))
        except pytest.UsageError as error:
            raise pytest.UsageError(f"{item.nodeid} is {error}") from None
        if tier:
            item.add_marker(tier)


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

    import psycopg.connection
    import psycopg.connection_async
    import redis.connection

    # Where every psycopg connection starts (psycopg.connect, pools, async) and where every
    # redis-py connection is opened (connect() and the send path both call it).
    monkeypatch.setattr(psycopg.connection, "conninfo_attempts", refuse)
    monkeypatch.setattr(psycopg.connection_async, "conninfo_attempts_async", refuse)
    monkeypatch.setattr(redis.connection.AbstractConnection, "connect_check_health", refuse)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)


pytest_plugins = ["tests.fixtures"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from paygate.supervisor import redact_url
    from tests.fixtures import SERVICES

    services = config.stash.get(SERVICES, None)
    if services is None:
        terminalreporter.write_line("paygate services: none started")
    else:
        kind = "embedded" if services.is_embedded else "external"
        terminalreporter.write_line(
            f"paygate services: {kind} (database {services.database_name}, "
            f"redis {redact_url(services.redis_url)})"
        )
