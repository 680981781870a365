"""The docs page: its snippets carry this merchant's real key, secret and URLs, and the webhook
verification snippets, run as they are printed, accept our signed deliveries and refuse others."""

from __future__ import annotations

import html
import re
import socket
import subprocess
import sys
import time

import pytest

from paygate.builtin.processors import testmode
from paygate.config import TEST_MERCHANT_ID
from paygate.embedded import free_port
from paygate.services import merchants, webhooks
from paygate.web.dashboard.app import create_app
from tests.dashboard_client import DashboardClient, by_test_id
from tests.fixtures import TEST_SECRET, set_webhook_url

SECTIONS = {
    "section-create-order": "code-snippet-create-order",
    "section-sdk-integration": "code-snippet-sdk",
    "section-webhook-verification": "code-snippet-webhook",
}


@pytest.fixture
def docs(ctx) -> str:
    client = DashboardClient(create_app(ctx))
    client.login()
    return client.get("/dashboard/docs").text


def snippet(page: str, element_id: str) -> str:
    match = re.search(rf'<code id="{element_id}"[^>]*>(.*?)</code>', page, re.S)
    assert match, element_id
    return html.unescape(match[1])


def test_docs_sections_hold_their_snippets_with_this_merchants_values(docs, ctx, test_merchant):
    found = by_test_id(docs)
    assert len(found["api-docs"]) == 1
    for section, code in SECTIONS.items():
        assert len(found[section]) == 1 and found[code][0].inside[-1] == section
    create_order = found["code-snippet-create-order"][0].text
    assert f"{ctx.settings.api_url}/api/v1/orders" in create_order
    assert test_merchant.api_key in create_order and TEST_SECRET in create_order
    sdk = found["code-snippet-sdk"][0].text
    assert f'src="{ctx.settings.checkout_url}/checkout.js"' in sdk
    assert "new PaymentGateway" in sdk and f"key: '{test_merchant.api_key}'" in sdk
    webhook = found["code-snippet-webhook"][0].text
    assert "X-Webhook-Signature".lower() in webhook.lower() and "createHmac" in webhook
    assert "hmac.new" in webhook and test_merchant.webhook_secret in webhook
    for event in ("payment.success", "payment.failed", "refund.processed", "webhook.test"):
        assert event in docs


def test_docs_test_values_are_the_test_processors(docs):
    table = by_test_id(docs)["section-test-values"][0].text
    for value in (
        testmode.ALWAYS_SUCCEED_VPA,
        testmode.ALWAYS_FAIL_VPA,
        testmode.FAILING_REFUND_REASON,
    ):
        assert value in table
    assert "4242 4242 4242 4242" in table and "4000 0000 0000 0002" in table
    assert "4000 0000 0000 3220" in table


def test_docs_retry_schedule_is_the_configured_one(docs, ctx):
    table = by_test_id(docs)["section-retries"][0].text
    assert "1 min 5 s 3 5 min 10 s 4 30 min 15 s 5 2 h 20 s" in table


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("the snippet server did not start")


@pytest.mark.parametrize(
    "element_id, command",
    [("snippet-webhook-node", ["node", "-e"]), ("snippet-webhook-python", [sys.executable, "-c"])],
)
def test_webhook_snippet_accepts_a_signed_delivery_and_refuses_a_forged_one(
    docs, ctx, tmp_path, element_id, command
):
    code = snippet(docs, element_id)
    port = free_port()
    proc = subprocess.Popen(
        [*command, code],
        env={"PATH": "/usr/bin:/bin", "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, proc)
        set_webhook_url(ctx, f"http://127.0.0.1:{port}/webhook")
        merchant = merchants.get(ctx, TEST_MERCHANT_ID)
        good = webhooks.send_test(ctx, merchant)["id"]
        assert webhooks.deliver(ctx, good) == "success"
        # The merchant rotated the secret but the server still has the old one: refused.
        webhooks.update_config(ctx, merchant, {"regenerate_secret": True})
        forged = webhooks.send_test(ctx, merchant)["id"]
        webhooks.deliver(ctx, forged)
        with ctx.db.connection() as conn:
            codes = {
                str(r["id"]): r["response_code"]
                for r in conn.execute("SELECT id, response_code FROM webhook_logs")
            }
        assert codes == {good: 200, forged: 401}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert b"received webhook.test" in out
