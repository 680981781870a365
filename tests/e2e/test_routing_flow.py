"""Done-when 1 of issue 17 end to end: a merchant with two processors, the first one's bank down
(nothing listens on its port: the connection is refused), real API, dashboard and worker
processes. The fallback list is set on the dashboard's Processor page in Chromium; a payment is
created through the API, the worker finds the first processor unreachable, moves the payment to
the second, which settles it; the API shows ``routing`` and why, the worker logs one WARNING
line (no traceback), and the dashboard's payment timeline shows the fallback and its reason."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from paygate.config import TEST_MERCHANT_ID
from paygate.embedded import free_port
from tests.browser.conftest import DESKTOP, screenshot
from tests.browser.test_dashboard import sign_in
from tests.e2e.helpers import settled
from tests.plugins.helpers import fake_distribution

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# A processor whose bank is a TCP service on DOWNBANK_PORT: the charge connects first, and a
# refused connection is provably nothing sent (ProcessorUnreachable).
DOWNBANK = """
import os
import socket

from paygate import ChargeResult, ProcessorUnreachable, RefundResult, hookimpl


class Downbank:
    name = "downbank"
    methods = frozenset({"upi", "card"})
    supports_partial_refund = True
    supports_manual_capture = False

    def _connect(self):
        port = int(os.environ["DOWNBANK_PORT"])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            raise ProcessorUnreachable(f"bank at port {port} refused the connection") from None

    def charge(self, request):
        self._connect()
        return ChargeResult.success()

    def sync(self, payment):
        self._connect()
        return ChargeResult.success()

    def capture(self, payment, amount):
        return ChargeResult.success()

    def refund(self, payment, refund):
        return RefundResult.processed()


@hookimpl
def paygate_register_processors(register):
    register(Downbank())
"""


def paygate_cli(gateway, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "paygate", *args],
        env=gateway.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"paygate {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_first_processor_down_the_payment_settles_through_the_fallback_and_says_why(
    gateway_factory, tmp_path, browser
):
    site = tmp_path / "site"
    site.mkdir()
    module = f"downbank_{uuid.uuid4().hex[:8]}"
    fake_distribution(site, "paygate-downbank", "1.0", {"downbank": module}, {module: DOWNBANK})
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    dead_port = free_port()  # nothing listens there: the bank is down
    gateway = gateway_factory(
        PYTHONPATH=pythonpath, DOWNBANK_PORT=str(dead_port), SLOWBANK_SETTLE_SECONDS="0"
    )
    paygate_cli(gateway, "merchants", "set-processor", TEST_MERCHANT_ID, "downbank")

    # The merchant sets its fallback on the dashboard: Slowbank (no tokenize, so it can charge
    # without the card details the gateway never stores).
    base = gateway.start_web("dashboard")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, base)
        page.goto(base + "/dashboard/processor")
        expect(page.get_by_test_id("processor-name")).to_have_text("downbank")
        page.get_by_test_id("processor-fallback-input").fill("nosuchbank")
        page.get_by_test_id("save-processor-fallback").click()
        expect(page.get_by_test_id("processor-fallback-error")).to_contain_text(
            "Unknown processor 'nosuchbank'"
        )
        page.get_by_test_id("processor-fallback-input").fill("slowbank")
        page.get_by_test_id("save-processor-fallback").click()
        expect(page.get_by_test_id("processor-fallback-list")).to_have_text("slowbank")

        gateway.start_worker()
        gateway.start_api()
        gateway.wait_healthy(worker=True)
        order = gateway.api_call("POST", "/api/v1/orders", json={"amount": 50000}).json()
        made = gateway.api_call(
            "POST",
            "/api/v1/payments",
            json={"order_id": order["id"], "method": "upi", "vpa": "user@paytm"},
        )
        assert made.status_code == 201, made.text
        payment_id = made.json()["id"]
        assert made.json()["routing"]["candidates"] == ["downbank", "slowbank"]

        payment = settled(gateway, f"/api/v1/payments/{payment_id}")
        assert payment["status"] == "success", payment
        routing = payment["routing"]
        assert routing["processor"] == "slowbank" and routing["decided_by"] == "merchant"
        (attempt,) = routing["attempts"]
        assert (attempt["processor"], attempt["stage"], attempt["outcome"]) == (
            "downbank",
            "charge",
            "unreachable",
        )
        assert attempt["reason"] == f"bank at port {dead_port} refused the connection"

        log = Path(gateway.logs["worker"]).read_text()
        lines = [line for line in log.splitlines() if payment_id in line and "downbank" in line]
        assert len(lines) == 1, log
        assert "WARNING" in lines[0] and "moved to slowbank" in lines[0]
        assert "Traceback" not in log

        page.goto(f"{base}/dashboard/transactions/{payment_id}")
        timeline = page.get_by_test_id("payment-timeline")
        expect(timeline).to_contain_text("Routed to slowbank by the merchant's settings")
        expect(timeline).to_contain_text("candidates: downbank → slowbank")
        fallback = page.get_by_test_id("timeline-fallback")
        expect(fallback).to_contain_text("Processor downbank unreachable at charge")
        expect(fallback).to_contain_text(f"bank at port {dead_port} refused the connection")
        expect(page.get_by_test_id("payment-processor")).to_have_text("slowbank")
        screenshot(page, "dashboard-payment-fallback")
    finally:
        context.close()
