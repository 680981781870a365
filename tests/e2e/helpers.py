"""What the end-to-end tests share: waiting for a resource to settle, reading its moments, and
checking a signed webhook as a merchant's receiver would."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from datetime import datetime

from tests.fixtures import wait_for

TEST_WEBHOOK_SECRET = b"whsec_test_abc123"  # the seeded test merchant's
NODE_RESTRINGIFY = (
    "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>"
    "process.stdout.write(JSON.stringify(JSON.parse(s))))"
)


def restringify_with_node(body: bytes) -> bytes:
    return subprocess.run(
        ["node", "-e", NODE_RESTRINGIFY], input=body, capture_output=True, check=True
    ).stdout


def settled(gateway, path: str, pending: str = "pending", timeout: float = 15.0) -> dict:
    """GET ``path`` until its status is no longer ``pending``; the resource then."""
    return wait_for(
        lambda: (r := gateway.api_call("GET", path).json())["status"] != pending and r,
        timeout=timeout,
        interval=0.1,
        message=f"{path} still {pending} after {timeout} s; logs: {gateway.tail()}",
    )


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def signed_payload(request) -> dict:
    """A delivered webhook (a werkzeug request), checked as a receiver would: the signature
    over the exact bytes, JSON, bytes that survive a re-serialization in Node; its payload."""
    body = request.get_data()
    expected = hmac.new(TEST_WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()
    assert request.headers["X-Webhook-Signature"] == expected
    assert request.headers["Content-Type"] == "application/json"
    # Receivers often re-serialize before verifying: the bytes must survive that unchanged.
    assert restringify_with_node(body) == body
    payload = json.loads(body)
    assert isinstance(payload["timestamp"], int)
    return payload
