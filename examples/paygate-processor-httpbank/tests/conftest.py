"""A real Httpbank server (its own process) and a real receiver for its callbacks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from paygate_processor_httpbank.testing import RunningBank, start_bank

from paygate.testing import Receiver


@pytest.fixture(scope="session")
def bank(tmp_path_factory) -> Iterator[RunningBank]:
    running = start_bank(tmp_path_factory.mktemp("httpbank"), "--admin-token", "admin-token-1")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def callbacks() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver
