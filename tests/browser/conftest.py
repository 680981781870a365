"""Browser fixtures: Playwright driving Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.factories import create_order
from tests.fixtures import CHROMIUM, CHROMIUM_FLAGS  # noqa: F401  (the browser fixture is there)

ARTIFACTS = Path(os.environ.get("PAYGATE_ARTIFACTS", "artifacts")) / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under artifacts/screenshots/ (kept by CI as an artifact)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def checkout_gateway(shared_db, database_url, tmp_path_factory):
    """API, checkout app and worker as real processes, shared by one test module (starting them
    per test would triple the browser suite's time); every test makes its own orders."""
    from paygate.embedded import free_port
    from tests.fixtures import TEST_ENV, Gateway, flush_redis, make_settings, reset_record

    reset_record(database_url, make_settings())
    flush_redis()
    checkout_port = free_port()
    env = {
        **os.environ,
        **TEST_ENV,
        # Long enough to see the processing state, short enough for a quick suite.
        "TEST_PROCESSING_DELAY": "500",
        "PAYGATE_JANITOR_INTERVAL": "0.2",
        # The test processor's 3-D Secure page is on this checkout (its next_action URL).
        "PAYGATE_CHECKOUT_URL": f"http://127.0.0.1:{checkout_port}",
    }
    gateway = Gateway(env=env, tmp=str(tmp_path_factory.mktemp("checkout-gateway")))
    try:
        # The checkout first: its port is bound before the API picks one of its own.
        gateway.checkout_url = gateway.start_web("checkout", port=checkout_port)
        gateway.start_worker()  # boots while the API starts
        gateway.start_api()
        gateway.wait_healthy(worker=True)
        yield gateway
    finally:
        for name in list(gateway.procs):  # signal all first: they shut down in parallel
            gateway.send_signal(name, signal.SIGINT if name == "worker" else signal.SIGTERM)
        gateway.stop_all()


@pytest.fixture
def new_order(checkout_gateway):
    """Create an order through the real API; returns its JSON."""

    def create(amount: int = 50000) -> dict:
        return create_order(checkout_gateway, amount)

    return create
