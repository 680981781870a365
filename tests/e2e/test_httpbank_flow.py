"""Done-when 1 of issue 16: the example PSP integration end to end. The Httpbank server (its own
process), the ``httpbank`` plugin installed (``pip install -e examples/paygate-processor-httpbank``),
the real API, checkout app and worker, and Chromium on the hosted checkout page:

a merchant routed to httpbank with its own credentials (``paygate merchants set-processor
--set``); a card payment is tokenized at the bank, challenged on the bank's 3-D Secure page,
approved in Chromium, settled by the bank's signed callback (recorded and applied), captured in
part through the API, and refunded within the captured amount (beyond it: refused); then the
card number, CVV and holder name are looked for at rest (every table, Redis, every process's log)
with the chaos suite's scanner."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from paygate_processor_httpbank.bank import sign
from paygate_processor_httpbank.testing import ACCOUNT, start_bank
from playwright.sync_api import expect
from psycopg.rows import dict_row

from paygate.config import TEST_MERCHANT_ID
from paygate.embedded import free_port
from tests.browser.conftest import DESKTOP, screenshot
from tests.chaos.scan import (
    Needles,
    find_derivatives,
    find_leaks,
    read_files,
    redis_contents,
    table_contents,
)
from tests.e2e.helpers import settled
from tests.factories import create_order
from tests.fixtures import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PAN = "4242424242424242"  # challenged like every card at Httpbank
CVV = "739"
HOLDER = "Meera Httpbank-Scan"
SETTLED_MS = 15_000
NEEDLES = Needles(card_numbers=(PAN,), cvv=CVV, holder=HOLDER)


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


def callbacks_of(database_url: str, payment_id: str) -> list[dict]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT processor, verified, outcome, applied, event_id, reference "
            "FROM processor_callbacks WHERE payment_id = %s ORDER BY received_at",
            (payment_id,),
        ).fetchall()


def test_a_card_payment_through_httpbank_challenged_settled_captured_refunded_no_card_at_rest(
    gateway_factory, database_url, redis_url, tmp_path, browser
):
    bank = start_bank(tmp_path)
    try:
        gateway = gateway_factory(
            HTTPBANK_TEST_API_KEY=ACCOUNT[1], HTTPBANK_TEST_SIGNING_SECRET=ACCOUNT[2]
        )
        # The bank's callbacks go to PAYGATE_API_URL, and its buyers come back to the checkout
        # app (ChargeRequest.return_url): both addresses are known before anything starts.
        gateway.api_port = free_port()
        gateway.env["PAYGATE_API_URL"] = gateway.url
        gateway.checkout_url = gateway.start_web("checkout")
        gateway.env["PAYGATE_CHECKOUT_URL"] = gateway.checkout_url
        # The operator's way: per-merchant settings, secrets from the environment.
        paygate_cli(
            gateway,
            "merchants",
            "set-processor",
            TEST_MERCHANT_ID,
            "httpbank",
            "--set",
            f"base_url={bank.url}",
            "--set-from-env",
            "api_key=HTTPBANK_TEST_API_KEY",
            "--set-from-env",
            "signing_secret=HTTPBANK_TEST_SIGNING_SECRET",
        )
        shown = paygate_cli(gateway, "processors", "show", TEST_MERCHANT_ID)
        assert ACCOUNT[1] not in shown and ACCOUNT[2] not in shown  # secrets write-only
        gateway.start_worker()
        gateway.start_api()
        gateway.wait_healthy(worker=True)

        payment_id = pay_on_the_hosted_page(browser, gateway, bank.url)
        payment = gateway.api_call("GET", f"/api/v1/payments/{payment_id}").json()
        assert (payment["status"], payment["method"]) == ("success", "card")
        assert payment["processor_reference"].startswith("ch_")
        assert "next_action" not in payment and "method_token" not in payment

        # Settled by the bank's signed callback: recorded, verified, applied.
        recorded = callbacks_of(database_url, payment_id)
        assert any(c["verified"] and c["applied"] for c in recorded), recorded
        assert all(c["processor"] == "httpbank" for c in recorded)
        assert recorded[0]["outcome"] == "success"

        # A forged callback is refused, a late one claiming the opposite changes nothing.
        late_and_forged(gateway, payment, database_url)

        # Manual capture (httpbank authorizes): part of it.
        captured = gateway.api_call(
            "POST", f"/api/v1/payments/{payment_id}/capture", json={"amount": 20000}
        )
        assert captured.status_code == 200, captured.text
        assert captured.json()["amount_captured"] == 20000

        # Refunds fit in what was captured.
        beyond = gateway.api_call(
            "POST", f"/api/v1/payments/{payment_id}/refunds", json={"amount": 20001}
        )
        assert beyond.status_code == 400, beyond.text
        assert beyond.json()["error"]["code"] == "BAD_REQUEST_ERROR"
        refund = gateway.api_call(
            "POST", f"/api/v1/payments/{payment_id}/refunds", json={"amount": 15000}
        )
        assert refund.status_code == 201, refund.text
        done = settled(gateway, f"/api/v1/refunds/{refund.json()['id']}", timeout=20)
        assert done["status"] == "processed", done
        assert done["processor_reference"].startswith("re_")
        rest = gateway.api_call(
            "POST", f"/api/v1/payments/{payment_id}/refunds", json={"amount": 5001}
        )
        assert rest.status_code == 400, rest.text  # 15000 + 5001 > 20000 captured
    finally:
        bank.stop()
        gateway.stop_all()  # logs flushed before they are read

    scan_for_card_data(gateway, bank, database_url, redis_url, payment_id)


def late_and_forged(gateway, payment: dict, database_url: str) -> None:
    url = f"{gateway.url}/api/v1/processors/httpbank/callbacks"
    data = {
        "id": payment["processor_reference"],
        "object": "charge",
        "idempotency_key": payment["id"],
        "status": "failed",
        "error": {"code": "CARD_DECLINED", "message": "Declined"},
    }
    before = len(callbacks_of(database_url, payment["id"]))
    for secret, event_id, expected in (
        ("hb_whsec_forger_0000", "evt_forged", 400),
        (ACCOUNT[2], "evt_late", 200),
    ):
        body = json.dumps({"id": event_id, "type": "charge.failed", "data": data}).encode()
        headers = {"Httpbank-Signature": sign(secret, body, int(time.time()))}
        answer = requests.post(url, data=body, headers=headers, timeout=10)
        assert answer.status_code == expected, answer.text
        if expected == 200:
            assert answer.json() == {"received": True, "applied": False}
    after = gateway.api_call("GET", f"/api/v1/payments/{payment['id']}").json()
    assert (after["status"], after["error_code"]) == ("success", None)
    recorded = callbacks_of(database_url, payment["id"])[before:]
    assert [(c["event_id"], c["verified"], c["applied"]) for c in recorded] == [
        ("evt_forged", False, False),
        ("evt_late", True, False),
    ]


def pay_on_the_hosted_page(browser, gateway, bank_url: str) -> str:
    """The buyer: the hosted checkout page, a card, the bank's challenge, approve; the payment's
    id once the page shows the outcome."""
    order = create_order(gateway, 50000)
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.set_default_timeout(SETTLED_MS)
        page.goto(f"{gateway.checkout_url}/checkout?order_id={order['id']}")
        page.get_by_test_id("method-card").click()
        page.get_by_test_id("card-number-input").fill("4242 4242 4242 4242")
        page.get_by_test_id("expiry-input").fill("12/30")
        page.get_by_test_id("cvv-input").fill(CVV)
        page.get_by_test_id("cardholder-name-input").fill(HOLDER)
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/payments/public")
        ) as created:
            page.get_by_test_id("pay-button").click()
        assert created.value.status == 201, created.value.text()
        payment_id = created.value.json()["id"]

        # The worker's charge answered action_required: the page goes to the bank.
        page.wait_for_url(re.compile(re.escape(bank_url) + r"/challenge/ch_\w+"))
        pending = gateway.api_call("GET", f"/api/v1/payments/{payment_id}").json()
        assert pending["status"] == "pending"
        assert pending["next_action"] == {"type": "redirect", "url": page.url}
        expect(page.get_by_text("4242")).to_be_visible()
        screenshot(page, "httpbank-challenge")
        page.get_by_test_id("challenge-approve").click()

        # The bank redirects to the return URL; the checkout shows the outcome.
        page.wait_for_url(re.compile(rf"{re.escape(gateway.checkout_url)}/checkout\?.*"))
        expect(page.get_by_test_id("success-state")).to_be_visible()
        expect(page.get_by_test_id("payment-id")).to_have_text(payment_id)
        screenshot(page, "httpbank-success")
    finally:
        context.close()
    wait_for(
        lambda: (
            gateway.api_call("GET", f"/api/v1/payments/{payment_id}").json()["status"] == "success"
        ),
        timeout=10,
        message="the payment did not settle",
    )
    return payment_id


def scan_for_card_data(gateway, bank, database_url, redis_url, payment_id) -> None:
    tables = table_contents(database_url)
    with redis.Redis.from_url(redis_url) as conn:
        live = redis_contents(conn)
    strict = [*tables, ("redis live keys", live)]
    logs = read_files([*(Path(path) for path in gateway.logs.values()), bank.log])
    # What the scan must have seen to mean anything: the payment, its token, the callback.
    payments = dict(tables)["table public.payments"]
    assert payment_id.encode() in payments and b"4242" in payments  # the last four: allowed
    assert re.search(rb"tok_\w+", payments), "the stored token is in the scan"
    assert payment_id.encode() in dict(tables)["table public.processor_callbacks"]
    assert any(name.endswith("api.log") for name, _ in logs)
    assert b"POST /v1/tokens" in dict(logs)[str(bank.log)]

    # The scanner finds what it looks for, or a clean result means nothing.
    planted = f'{{"number": "{PAN}", "cvv": "{CVV}", "name": "{HOLDER}"}}'.encode()
    assert len(find_leaks([("planted", planted)], NEEDLES, strict=True)) >= 3
    leaks = find_leaks(strict, NEEDLES, strict=True) + find_leaks(logs, NEEDLES, strict=False)
    leaks += find_derivatives(strict + logs, NEEDLES)
    assert leaks == []
