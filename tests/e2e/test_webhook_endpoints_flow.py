"""Done-when 3 of issue 17, end to end: a merchant with two endpoints subscribed to different
events receives each event only where it is subscribed, each signed with that endpoint's secret.
Real gunicorn API, a real Huey worker, real Redis and PostgreSQL, two real receivers."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import standardwebhooks

from paygate.testing.receiver import Receiver
from tests.e2e.helpers import settled
from tests.factories import create_payment
from tests.fixtures import wait_for

pytestmark = pytest.mark.e2e


def test_two_endpoints_get_only_their_events_each_signed_with_its_own_secret(gateway_factory):
    with Receiver() as fulfilment, Receiver() as alerts:
        gateway = gateway_factory()
        gateway.start_api()
        gateway.start_worker()
        gateway.wait_healthy(worker=True)

        def add(receiver: Receiver, events: list[str]) -> dict:
            answer = gateway.api_call(
                "POST",
                "/api/v1/webhooks/endpoints",
                json={"url": receiver.url(), "events": events},
            )
            assert answer.status_code == 201, answer.text
            return answer.json()

        paid = add(fulfilment, ["payment.success"])
        failed = add(alerts, ["payment.failed", "refund.failed"])
        assert paid["secret"] != failed["secret"]

        good = create_payment(gateway, 50000, {"method": "upi", "vpa": "success@test"})
        bad = create_payment(gateway, 50000, {"method": "upi", "vpa": "failure@test"})
        assert settled(gateway, f"/api/v1/payments/{good['id']}")["status"] == "success"
        assert settled(gateway, f"/api/v1/payments/{bad['id']}")["status"] == "failed"

        (success,) = fulfilment.wait_for("/hooks", 1, timeout=15)
        (failure,) = alerts.wait_for("/hooks", 1, timeout=15)
        for request, endpoint, payment_id, event in (
            (success, paid, good["id"], "payment.success"),
            (failure, failed, bad["id"], "payment.failed"),
        ):
            payload = standardwebhooks.Webhook(endpoint["secret"]).verify(
                request.body, request.headers
            )
            assert payload["event"] == event
            assert payload["data"]["payment"]["id"] == payment_id
            expected = hmac.new(endpoint["secret"].encode(), request.body, hashlib.sha256)
            assert request.headers["X-Webhook-Signature"] == expected.hexdigest()
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(paid["secret"]).verify(failure.body, failure.headers)

        # Every delivery done: nothing else arrived anywhere (payment.created, .pending, the
        # other outcome), and the logs say where each one went.
        def all_done():
            page = gateway.api_call("GET", "/api/v1/webhooks?limit=100").json()
            return page if all(row["status"] == "success" for row in page["data"]) else None

        page = wait_for(all_done, timeout=15, message="deliveries still pending")
        assert [json.loads(r.body)["event"] for r in fulfilment.to("/hooks")] == ["payment.success"]
        assert [json.loads(r.body)["event"] for r in alerts.to("/hooks")] == ["payment.failed"]
        assert sorted((row["endpoint_id"], row["event"]) for row in page["data"]) == sorted(
            [(paid["id"], "payment.success"), (failed["id"], "payment.failed")]
        )
        assert {row["url"] for row in page["data"]} == {fulfilment.url(), alerts.url()}
