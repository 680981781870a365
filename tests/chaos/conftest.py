"""Fixtures of the fault-injection suite: our own servers, a gateway per run, the figures table.

Each run is a real gateway (gunicorn API + two Huey consumer processes) on a fresh database of
the suite's own embedded PostgreSQL and on its own embedded Valkey, sending webhooks to a real
receiver. The figures every test records are printed at the end of the session (also under
``-q``), and the data-at-rest scan always runs after the fault tests.
"""

from __future__ import annotations

import json

import pytest

from tests.chaos.run import ChaosRun
from tests.chaos.servers import ChaosServers

FIGURES_KEY = pytest.StashKey[list]()
SCAN_MODULE = "tests/chaos/test_data_at_rest.py"


def pytest_configure(config) -> None:
    config.stash[FIGURES_KEY] = []


def pytest_collection_modifyitems(session, config, items) -> None:
    """The scan reads what the fault tests left behind, so it goes last."""
    last = [item for item in items if item.nodeid.startswith(SCAN_MODULE)]
    if last:
        items[:] = [item for item in items if item not in last] + last


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    figures = config.stash.get(FIGURES_KEY, [])
    if not figures:
        return
    terminalreporter.section("chaos figures")
    for name, values in figures:
        terminalreporter.write_line(f"{name}: {json.dumps(values)}")


@pytest.fixture(scope="session")
def chaos_servers(tmp_path_factory):
    servers = ChaosServers.start(tmp_path_factory.mktemp("chaos"))
    yield servers
    servers.stop()


@pytest.fixture
def record_figures(request):
    """``record_figures(payments=..., lost=...)``: printed now (``-s``) and in the summary."""

    def record(**values) -> None:
        name = request.node.name
        print(f"\n[chaos] {name}: {json.dumps(values)}")
        request.config.stash[FIGURES_KEY].append((name, values))

    return record


@pytest.fixture
def chaos_run(chaos_servers, request):
    """``chaos_run(label, **env)`` -> a ChaosRun on a fresh database; stopped afterwards."""
    runs: list[ChaosRun] = []

    def build(label: str, **env: str) -> ChaosRun:
        chaos_servers.flush_redis()
        run = ChaosRun.create(chaos_servers, label, **env)
        runs.append(run)
        return run

    yield build
    for run in runs:
        run.close()
