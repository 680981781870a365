"""Done-when 2 of issue 19, end to end: ``paygate listen --forward-to <receiver> --duplicate``
and ``paygate trigger payment.success``, as real subprocesses next to a real gateway (gunicorn
API, Huey worker): the receiver gets payment.created, payment.pending and payment.success, each
twice with the same ``webhook-id``, each verifying with the merchant's webhook secret by both
signatures; listen shows each delivery's status; the ``--json`` outputs parse; a gateway
that goes away and comes back loses listen nothing; SIGINT and SIGTERM stop listen alike
(130, 143)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
import standardwebhooks

from paygate.config import TEST_MERCHANT_ID
from paygate.services import merchants
from paygate.testing.receiver import Receiver
from paygate_client import webhooks as client_webhooks
from tests.factories import service_payment
from tests.fixtures import wait_for

pytestmark = pytest.mark.e2e

# The CLI needs no database or Redis: it runs without them.
CLI_ENV = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}


class Lines:
    """A subprocess's output, read line by line on a thread."""

    def __init__(self, stream) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def until(self, predicate, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while not predicate(self.seen):
            try:
                self.seen.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0)))
            except queue.Empty:
                raise AssertionError(f"gave up waiting; output so far: {self.seen}") from None
        return self.seen


def paygate(*args: str) -> list[str]:
    return [sys.executable, "-m", "paygate", *args]


def listen(url: str, receiver_url: str, *extra: str) -> tuple[subprocess.Popen, Lines, Lines]:
    proc = subprocess.Popen(
        paygate(
            "listen", "--forward-to", receiver_url, "--api-url", url, "--interval", "0.2", *extra
        ),
        env=CLI_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, Lines(proc.stdout), Lines(proc.stderr)


def cli(url: str, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run(
        paygate(*args, "--api-url", url), env=CLI_ENV, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == code, (done.stdout, done.stderr)
    return done


def deliveries(lines: list[str]) -> list[str]:
    return [line for line in lines if " -> " in line]


def test_listen_forwards_what_trigger_fires_signed_twice_and_survives_a_gateway_restart(
    gateway_factory, make_ctx
):
    gateway = gateway_factory(TEST_PROCESSING_DELAY="300")
    gateway.start_api()
    gateway.start_worker()
    gateway.wait_healthy(worker=True)
    # A generated secret, so Standard Webhooks headers are signed too (the seeded one is not
    # a valid whsec_ secret).
    rotated = gateway.api_call(
        "POST", "/api/v1/webhooks/config", json={"regenerate_secret": True}
    ).json()
    secret = rotated["webhook_secret"]

    with Receiver() as receiver:
        text, text_out, text_err = listen(gateway.url, receiver.url("/hooks"), "--duplicate")
        as_json, json_out, json_err = listen(gateway.url, receiver.url("/json"), "--json")
        try:
            text_out.until(lambda seen: any(line.startswith("Ready") for line in seen))
            json_err.until(lambda seen: any(line.startswith("Ready") for line in seen))
            assert secret not in "\n".join(text_out.seen + json_err.seen)

            fired = subprocess.run(
                paygate("trigger", "payment.success", "--api-url", gateway.url, "--json"),
                env=CLI_ENV,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert fired.returncode == 0, fired.stderr
            document = json.loads(fired.stdout)
            assert document["fired"] is True and document["payment"]["status"] == "success"
            payment_id = document["payment"]["id"]

            got = receiver.wait_for("/hooks", 6, timeout=20)
            by_id: dict[str, list] = {}
            for request in got:
                by_id.setdefault(request.headers["webhook-id"], []).append(request)
            names = set()
            for webhook_id, pair in by_id.items():
                assert len(pair) == 2, webhook_id  # --duplicate: twice, the same webhook-id
                first, second = pair
                assert first.body == second.body
                assert first.headers["webhook-signature"] == second.headers["webhook-signature"]
                payload = standardwebhooks.Webhook(secret).verify(first.body, first.headers)
                expected = hmac.new(secret.encode(), first.body, hashlib.sha256).hexdigest()
                assert first.headers["X-Webhook-Signature"] == expected
                assert client_webhooks.verify(first.body, first.headers, secret) == payload
                assert payload["data"]["payment"]["id"] == payment_id
                names.add(payload["event"])
            assert names == {"payment.created", "payment.pending", "payment.success"}

            shown = deliveries(text_out.until(lambda seen: len(deliveries(seen)) >= 6))
            assert all("-> 200 OK" in line for line in shown), shown
            assert sum("(duplicate)" in line for line in shown) == 3
            assert {line.split()[1] for line in shown} == names

            records = [json.loads(line) for line in json_out.until(lambda seen: len(seen) >= 3)]
            assert {r["event"] for r in records} == names
            assert all(r["status"] == 200 and not r["duplicate"] for r in records)
            assert len(receiver.to("/json")) == 3

            # The quick commands, and their exit statuses.
            listed = cli(gateway.url, "payments", "list", "--status", "success", "--json")
            assert [p["id"] for p in json.loads(listed.stdout)["data"]] == [payment_id]
            too_much = cli(
                gateway.url, "refunds", "create", payment_id, "--amount", "50001", code=1
            )
            assert "BAD_REQUEST_ERROR: Refund amount exceeds available amount" in too_much.stderr
            refund = json.loads(
                cli(
                    gateway.url, "refunds", "create", payment_id, "--amount", "100", "--json"
                ).stdout
            )
            assert (refund["payment_id"], refund["amount"]) == (payment_id, 100)
            shown = cli(gateway.url, "payments", "get", payment_id).stdout.splitlines()
            for line in (
                f"id:                        {payment_id}",
                "status:                    success",
                "amount_refunded:           ₹1.00",
                "processor:                 test",
            ):
                assert line in shown, shown
            assert any(line.startswith("processor_reference:") for line in shown), shown
            table = cli(gateway.url, "payments", "--json", "list").stdout  # before the action
            assert json.loads(table)["data"][0]["amount_refunded"] == 100
            table = cli(gateway.url, "payments", "list").stdout.splitlines()
            assert table[0].split() == [
                "id",
                "order_id",
                "amount",
                "refunded",
                "method",
                "status",
                "created_at",
            ]
            assert table[1].split()[:4] == [payment_id, document["order"]["id"], "₹500.00", "₹1.00"]
            late = cli(gateway.url, "trigger", "payment.failed", "--timeout", "0.05", code=4)
            assert "did not fire: timed out" in late.stderr
            assert late.stdout.startswith("order    order_") and "payment  pay_" in late.stdout
            assert cli("http://127.0.0.1:9", "payments", "list", code=3).stderr.startswith(
                "paygate: cannot reach the gateway"
            )

            # The API goes away; events written meanwhile arrive once it is back.
            gateway.stop("api")
            text_err.until(lambda seen: any("gateway unreachable" in line for line in seen))
            ctx = make_ctx()
            merchant = merchants.get(ctx, TEST_MERCHANT_ID)
            offline = service_payment(ctx, merchant, vpa="failure@test", settle=False)
            gateway.start_api()
            # Forwarded only if listen kept its cursor (a fresh head would skip them).
            offline_id = offline["id"].encode()
            of_offline = wait_for(
                lambda: (
                    (found := [r for r in receiver.to("/hooks") if offline_id in r.body])
                    and len(found) >= 4
                    and found
                ),
                timeout=20,
            )
            assert {json.loads(r.body)["event"] for r in of_offline[:4]} == {
                "payment.created",
                "payment.pending",
            }
            text_err.until(lambda seen: any("reachable again" in line for line in seen))
        finally:
            text.send_signal(signal.SIGINT)
            as_json.send_signal(signal.SIGTERM)  # what `kill` sends to a background listen
        assert text.wait(10) == 130 and as_json.wait(10) == 143
        # Ctrl-C or SIGTERM: a clean stop that says how much was forwarded (the offline
        # payment's payment.failed may have come too).
        for err in (text_err, json_err):
            err.until(lambda seen: any("paygate listen: stopped after" in s for s in seen))
