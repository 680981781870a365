"""Shared fixtures: real PostgreSQL and Redis (the machine's, or embedded), a clean record per
test, the services context, an in-process API client, and a real gateway in subprocesses."""

from __future__ import annotations

import os
import signal

from tests import services as test_services

_services = None


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_configure(config):
    """Decide the servers before anything imports ``paygate.jobs`` (it reads REDIS_URL)."""
    global _services
    if os.environ.get("PAYGATE_TESTS_CHILD"):
        return
    # A run stopped with SIGTERM (a timeout, a cancelled CI job) ends like Ctrl-C: fixtures tear
    # down, so the gateways they started in their own sessions and the embedded servers stop.
    signal.signal(signal.SIGTERM, _interrupt)
    _services = test_services.start()
    os.environ["DATABASE_URL"] = _services.database_url
    os.environ["REDIS_URL"] = _services.redis_url
    # Concurrent test runs may share one Redis: each gets its own queue and heartbeat keys.
    os.environ["PAYGATE_QUEUE"] = f"paygate-test-{_services.database_name}"
    os.environ.setdefault("PAYGATE_ALLOW_PRIVATE_WEBHOOKS", "true")
    config.stash["paygate_services"] = _services


def pytest_report_header(config):
    if _services is None:
        return None
    return (
        f"paygate services: {'embedded' if _services.is_embedded else 'external'} "
        f"(database {_services.database_name}, redis {_services.redis_url})"
    )


def pytest_unconfigure(config):
    if _services is not None:
        test_services.stop(_services)


pytest_plugins = ["tests.fixtures"]
