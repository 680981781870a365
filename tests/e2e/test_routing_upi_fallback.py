"""A UPI payment whose first processor's charge is unreachable settles through the built-in test
processor, end to end (real API and worker processes): the worker tokenizes the stored VPA with
the test processor, moves the payment in one guarded update, and the API shows why. A card
payment on the same route stays with its first processor: its details are not stored."""

from __future__ import annotations

import os
import uuid

import pytest

from paygate.config import TEST_MERCHANT_ID
from paygate.embedded import free_port
from tests.e2e.helpers import settled
from tests.e2e.test_routing_flow import DOWNBANK, paygate_cli
from tests.fixtures import wait_for
from tests.plugins.helpers import fake_distribution

pytestmark = [pytest.mark.e2e]

CARD = {"number": "4111111111111111", "expiry_month": "12", "expiry_year": "99", "cvv": "123"}


def test_a_upi_payment_settles_through_the_test_processor_when_the_first_is_down(
    gateway_factory, tmp_path
):
    site = tmp_path / "site"
    site.mkdir()
    module = f"downbank_{uuid.uuid4().hex[:8]}"
    fake_distribution(site, "paygate-downbank", "1.0", {"downbank": module}, {module: DOWNBANK})
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    dead_port = free_port()  # nothing listens there: the bank is down
    gateway = gateway_factory(PYTHONPATH=pythonpath, DOWNBANK_PORT=str(dead_port))
    paygate_cli(
        gateway, "merchants", "set-processor", TEST_MERCHANT_ID, "downbank", "--fallback", "test"
    )
    gateway.start_worker()
    gateway.start_api()
    gateway.wait_healthy(worker=True)

    def pay(method: dict) -> dict:
        order = gateway.api_call("POST", "/api/v1/orders", json={"amount": 50000}).json()
        made = gateway.api_call(
            "POST", "/api/v1/payments", json={"order_id": order["id"], **method}
        )
        assert made.status_code == 201, made.text
        assert made.json()["routing"]["processor"] == "downbank"
        return made.json()

    upi = pay({"method": "upi", "vpa": "success@test"})
    payment = settled(gateway, f"/api/v1/payments/{upi['id']}")
    assert payment["status"] == "success", payment
    routing = payment["routing"]
    assert routing["processor"] == "test" and routing["candidates"] == ["downbank", "test"]
    assert [(a["processor"], a["stage"], a["outcome"]) for a in routing["attempts"]] == [
        ("downbank", "charge", "unreachable")
    ]
    assert routing["attempts"][0]["reason"] == f"bank at port {dead_port} refused the connection"

    card = pay({"method": "card", "card": CARD})
    path = f"/api/v1/payments/{card['id']}"
    waiting = wait_for(
        lambda: len((r := gateway.api_call("GET", path).json())["routing"]["attempts"]) >= 2 and r,
        timeout=15.0,
        interval=0.1,
        message=f"{path}: no fallback considered; logs: {gateway.tail()}",
    )
    assert waiting["status"] == "pending" and waiting["routing"]["processor"] == "downbank"
    considered = [(a["processor"], a["stage"], a["reason"]) for a in waiting["routing"]["attempts"]]
    assert considered == [
        ("downbank", "charge", f"bank at port {dead_port} refused the connection"),
        ("test", "charge", "needs the card details again (not stored)"),
    ]
