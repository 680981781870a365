"""Signatures that independent verifiers accept: a receiver written in Node (only JSON.stringify
and crypto) checks X-Webhook-Signature on every event; the standardwebhooks package checks the
Standard Webhooks headers."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess

import pytest
import standardwebhooks

from paygate import Delivery, compact_json
from paygate.services import payments, refunds, webhooks
from paygate.testing.receiver import Answer
from tests import factories
from tests.fixtures import AUTH, set_webhook_url

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/bin/node"), reason="the Node receiver needs /usr/bin/node"
)

# The merchant's side, as a Node developer would write it: parse, re-serialize with
# JSON.stringify, HMAC-SHA256 with the secret, compare in constant time. 200 when it verifies.
NODE_RECEIVER = r"""
const http = require('http');
const crypto = require('crypto');
const secret = process.env.WEBHOOK_SECRET;
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const expected = crypto.createHmac('sha256', secret)
      .update(JSON.stringify(payload)).digest('hex');
    const given = String(req.headers['x-webhook-signature'] || '');
    const ok = given.length === expected.length &&
      crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected));
    process.stdout.write(JSON.stringify({event: payload.event, ok}) + '\n');
    res.writeHead(ok ? 200 : 401, {'Content-Type': 'text/plain'});
    res.end(ok ? 'verified' : 'bad signature');
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({port: server.address().port}) + '\n');
});
"""


class NodeReceiver:
    def __init__(self, secret: str):
        self.proc = subprocess.Popen(
            ["/usr/bin/node", "-e", NODE_RECEIVER],
            env={**os.environ, "WEBHOOK_SECRET": secret},
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = json.loads(self.proc.stdout.readline())["port"]
        self.url = f"http://127.0.0.1:{self.port}/webhook"

    def verdicts(self) -> list[dict]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return [json.loads(line) for line in out.splitlines() if line]


def compatible(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def regenerate_secret(api) -> str:
    result = api.simulate_post(
        "/api/v1/webhooks/config", json={"regenerate_secret": True}, headers=AUTH
    )
    return result.json["webhook_secret"]


def pending_logs(ctx) -> list[str]:
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT id FROM webhook_logs WHERE status = 'pending' ORDER BY created_at, id"
        ).fetchall()
    return [str(r["id"]) for r in rows]


def create_payment(api, vpa: str) -> str:
    return factories.create_payment(api, method={"method": "upi", "vpa": vpa})["id"]


def refund(api, payment_id: str, amount: int, reason: str) -> str:
    result = api.simulate_post(
        f"/api/v1/payments/{payment_id}/refunds",
        json={"amount": amount, "reason": reason},
        headers=AUTH,
    )
    assert result.status_code == 201, result.text
    return result.json["id"]


def test_a_node_receiver_verifies_the_signature_of_every_event(ctx, api):
    """Every event the gateway emits, written by the real code paths and delivered by the real
    notifier, re-serialized by JSON.stringify and verified in Node."""
    node = NodeReceiver(regenerate_secret(api))
    set_webhook_url(ctx, node.url)
    try:
        paid = create_payment(api, "success@test")
        assert payments.process(ctx, paid) == "success"
        captured = api.simulate_post(
            f"/api/v1/payments/{paid}/capture", json={"amount": 50000}, headers=AUTH
        )
        assert captured.status_code == 200, captured.text
        declined = create_payment(api, "failure@test")
        assert payments.process(ctx, declined) == "failed"
        processed = refund(api, paid, 1000, 'Größe falsch — ₹10 zurück 😀 "quoted" </script>')
        assert refunds.process(ctx, processed) == "processed"
        refused = refund(api, paid, 500, "fail@test")
        assert refunds.process(ctx, refused) == "failed"
        assert api.simulate_post("/api/v1/webhooks/test", headers=AUTH).status_code == 202
        outcomes = [webhooks.deliver(ctx, log_id) for log_id in pending_logs(ctx)]
    finally:
        verdicts = node.verdicts()
    assert outcomes and set(outcomes) == {"success"}
    assert all(v["ok"] for v in verdicts), verdicts
    assert sorted(v["event"] for v in verdicts) == sorted(
        [
            "payment.created",
            "payment.pending",
            "payment.success",
            "payment.captured",
            "payment.created",
            "payment.pending",
            "payment.failed",
            "refund.created",
            "refund.processed",
            "refund.created",
            "refund.failed",
            "webhook.test",
        ]
    )


def test_a_node_receiver_verifies_bodies_that_need_care_to_serialize(ctx):
    """Non-ASCII text, escapes, nesting, nulls, booleans and large integers survive
    JSON.stringify(JSON.parse(body)) byte for byte, so the signature still matches."""
    secret = "whsec_test_abc123"
    node = NodeReceiver(secret)
    payloads = [
        {"event": "payment.success", "timestamp": 1700000000, "data": {"amount": 100_000_000_000}},
        {"event": "x", "timestamp": 1, "data": {"text": "₹500.00 — café 😀 日本", "n": None}},
        {"event": "x", "timestamp": 1, "data": {"esc": 'a"b\\c\n\t\u0001/</script>', "t": True}},
        {"event": "x", "timestamp": 1, "data": {"nested": [{"a": [1, -2, 0]}, {}, []]}},
        {"event": "x", "timestamp": 1, "data": {"sep": "\u2028\u2029", "zero": 0, "f": False}},
    ]
    notifier = ctx.plugins.notifier()
    try:
        results = [
            notifier.deliver(
                Delivery(
                    id=f"msg_{n}",
                    event=p["event"],
                    url=node.url,
                    body=compact_json(p),
                    secret=secret,
                    attempt=1,
                    timestamp=1700000000,
                    allow_private=True,
                )
            )
            for n, p in enumerate(payloads)
        ]
    finally:
        verdicts = node.verdicts()
    assert [r.status_code for r in results] == [200] * len(payloads)
    assert len(verdicts) == len(payloads) and all(v["ok"] for v in verdicts)


def test_standard_webhooks_verifies_a_generated_secret_and_the_id_is_stable_across_retries(
    ctx, api, receiver
):
    secret = regenerate_secret(api)
    receiver.answer("/hooks", Answer(500), Answer(200))
    set_webhook_url(ctx, receiver.url())
    log_id = api.simulate_post("/api/v1/webhooks/test", headers=AUTH).json["id"]
    assert webhooks.deliver(ctx, log_id) == "pending"
    with ctx.db.connection() as conn:
        conn.execute("UPDATE webhook_logs SET next_retry_at = now() WHERE id = %s", (log_id,))
    assert webhooks.deliver(ctx, log_id) == "success"
    first, second = receiver.to("/hooks")
    verifier = standardwebhooks.Webhook(secret)
    for request in (first, second):
        payload = verifier.verify(request.body, request.headers)
        assert payload["event"] == "webhook.test"
        assert request.headers["webhook-signature"].startswith("v1,")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == log_id
    assert first.body == second.body
    tampered = dict(second.headers, **{"webhook-id": "msg_other"})
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        verifier.verify(second.body, tampered)


def test_the_seeded_test_secret_gets_only_the_compatible_signature(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    log_id = api.simulate_post("/api/v1/webhooks/test", headers=AUTH).json["id"]
    webhooks.deliver(ctx, log_id)
    (request,) = receiver.to("/hooks")
    assert "webhook-signature" not in {k.lower() for k in request.headers}
    expected = hmac.new(b"whsec_test_abc123", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Webhook-Signature"] == expected


def test_a_retry_is_signed_with_the_secret_current_at_that_moment(ctx, api, receiver):
    receiver.answer("/hooks", 500)
    set_webhook_url(ctx, receiver.url())
    old = regenerate_secret(api)
    log_id = api.simulate_post("/api/v1/webhooks/test", headers=AUTH).json["id"]
    webhooks.deliver(ctx, log_id)
    new = regenerate_secret(api)
    receiver.answer("/hooks", 200)
    result = api.simulate_post(f"/api/v1/webhooks/{log_id}/retry", headers=AUTH)
    assert result.status_code == 200
    assert webhooks.deliver(ctx, log_id) == "success"
    before, after = receiver.to("/hooks")
    standardwebhooks.Webhook(old).verify(before.body, before.headers)
    standardwebhooks.Webhook(new).verify(after.body, after.headers)
    # X-Webhook-Signature is the new secret's alone; the old one still signs in the Standard
    # Webhooks header only during the rotation's overlap (tests/security/test_webhook_secrets.py
    # checks that it stops when the window ends).
    assert after.headers["X-Webhook-Signature"] == compatible(new, after.body)
    assert before.headers["X-Webhook-Signature"] == compatible(old, before.body)
