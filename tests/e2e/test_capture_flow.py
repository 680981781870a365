"""A capture whose outcome is not known at once, end to end: real gunicorn API, real Huey
consumer with its janitor, real Redis and PostgreSQL, and a processor plugin installed as a
distribution whose first capture of each payment fails in flight (the bank's answer is lost)."""

from __future__ import annotations

import json
import os

import pytest

from paygate.services import merchants
from tests.e2e.helpers import settled
from tests.e2e.test_payment_flow import pay
from tests.fixtures import set_webhook_url, wait_for
from tests.plugins.helpers import fake_distribution

pytestmark = pytest.mark.e2e

LOSSY_BANK = """
import os

from paygate import ChargeResult, RefundResult, hookimpl

CALLS = {calls!r}


class LossyBank:
    name = "lossybank"
    methods = frozenset({{"upi", "card"}})
    supports_partial_refund = True
    supports_manual_capture = True

    def charge(self, request):
        return ChargeResult.success(reference="lossy_" + request.idempotency_key)

    def sync(self, payment):
        return ChargeResult.success(reference="lossy_" + payment.id)

    def capture(self, payment, amount):
        # Shared across the API and the worker processes: a file per payment and attempt.
        mark = os.path.join(CALLS, payment.id)
        seen = os.path.exists(mark)
        with open(mark, "a") as fh:
            fh.write(f"capture {{amount}}\\n")
        if not seen:
            raise ConnectionError("the bank's answer was lost")
        return ChargeResult.success(reference="lossy_cap_" + payment.id)

    def refund(self, payment, refund):
        return RefundResult.processed(reference="lossy_rfnd_" + refund.id)


@hookimpl
def paygate_register_processors(register):
    register(LossyBank())
"""


def test_a_lost_capture_answer_is_resolved_by_the_worker(ctx, gateway_factory, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    site = tmp_path / "site"
    site.mkdir()
    fake_distribution(
        site,
        "paygate-lossybank",
        "1.0",
        {"lossybank": "lossybank_e2e"},
        {"lossybank_e2e": LOSSY_BANK.format(calls=str(calls))},
    )
    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    with ctx.db.connection() as conn:
        conn.execute("UPDATE merchants SET processor = 'lossybank'")
    merchants.forget_cached()
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    gateway = gateway_factory(PYTHONPATH=pythonpath)
    gateway.start_api()
    gateway.start_worker()
    gateway.wait_healthy(worker=True)

    payment = pay(gateway, {"method": "upi", "vpa": "buyer@okbank"}, amount=10000)
    path = f"/api/v1/payments/{payment['id']}"
    assert settled(gateway, path)["status"] == "success"
    answer = gateway.api_call("POST", path + "/capture", json={"amount": 7000})
    assert answer.status_code == 202, answer.text
    assert (answer.json()["captured"], answer.json()["capture_status"]) == (False, "pending")

    captured = wait_for(
        lambda: (p := gateway.api_call("GET", path).json())["captured"] and p,
        timeout=15.0,
        interval=0.1,
        message=f"the capture was not resolved; {gateway.tail()}",
    )
    assert (captured["amount_captured"], captured["capture_status"]) == (7000, "success")
    assert (calls / payment["id"]).read_text().splitlines() == ["capture 7000", "capture 7000"]
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT payload FROM webhook_logs WHERE resource_id = %s AND event = %s",
            (payment["id"], "payment.captured"),
        ).fetchall()
    assert len(rows) == 1
    assert rows[0]["payload"]["data"]["payment"]["amount_captured"] == 7000
    refund = gateway.api_call("POST", path + "/refunds", json={"amount": 7001})
    assert refund.status_code == 400 and json.loads(refund.text)["error"]["description"] == (
        "Refund amount exceeds available amount"
    )
