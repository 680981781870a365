"""The merchant's webhook receiver for the benchmark: answers 200 and verifies every signature.

Runs as its own process (``python -m bench.receiver PORT SECRET``) so its CPU is not the
driver's. The server is the suite's one test receiver, ``paygate.testing.Receiver`` (asyncio
HTTP/1.1 with keep-alive: Paygate's notifier keeps connections open, as a merchant's real server
would let it); this module adds what the benchmark records at ``/webhooks``. Every delivery is
checked two ways, ``X-Webhook-Signature`` (hex HMAC of the body with the secret's UTF-8 bytes) and, for a
``whsec_`` secret, the Standard Webhooks ``webhook-signature``; each arrival is recorded as
(event, resource id, webhook-id, CLOCK_MONOTONIC seconds, signature ok).

Control endpoints for the driver: ``GET /_stats`` (counts), ``GET /_dump`` (every arrival),
``POST /_reset``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sys
import time

import orjson

from paygate.testing.receiver import Answer, Received, Receiver


def signature_ok(secret: str, headers: dict[bytes, bytes], body: bytes) -> bool:
    """Both signatures Paygate sends must verify (the Standard one only for whsec_ secrets)."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(headers.get(b"x-webhook-signature", b""), expected):
        return False
    if not secret.startswith("whsec_"):
        return True
    key = base64.b64decode(secret[len("whsec_") :])
    msg_id = headers.get(b"webhook-id", b"")
    stamp = headers.get(b"webhook-timestamp", b"")
    signed = msg_id + b"." + stamp + b"." + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    offered = headers.get(b"webhook-signature", b"")
    return any(
        part.startswith(b"v1,") and hmac.compare_digest(part[3:], digest)
        for part in offered.split(b" ")
    )


def resource_of(payload: dict) -> str | None:
    data = payload.get("data") or {}
    for kind in ("payment", "refund"):
        if isinstance(data.get(kind), dict):
            return data[kind].get("id")
    return None


class Recorder:
    def __init__(self, secret: str):
        self.secret = secret
        self.reset()

    def reset(self) -> None:
        self.arrivals: list[tuple[str, str | None, str, float, bool]] = []
        self.bad_signatures = 0

    def record(self, headers: dict[bytes, bytes], body: bytes) -> None:
        now = time.monotonic()
        ok = signature_ok(self.secret, headers, body)
        try:
            payload = orjson.loads(body)
            event, resource = payload.get("event", "?"), resource_of(payload)
        except orjson.JSONDecodeError:
            event, resource, ok = "?", None, False
        if not ok:
            self.bad_signatures += 1
        webhook_id = headers.get(b"webhook-id", b"").decode()
        self.arrivals.append((event, resource, webhook_id, now, ok))

    def stats(self) -> dict:
        events: dict[str, int] = {}
        for event, *_ in self.arrivals:
            events[event] = events.get(event, 0) + 1
        return {
            "received": len(self.arrivals),
            "bad_signatures": self.bad_signatures,
            "events": events,
            "last_at": self.arrivals[-1][3] if self.arrivals else None,
        }


def serve(port: int, secret: str) -> None:
    recorder = Recorder(secret)
    receiver = Receiver(port=port)

    def deliver(request: Received) -> Answer:
        headers = {k.lower().encode(): v.encode() for k, v in request.headers.items()}
        recorder.record(headers, request.body)
        return Answer(200, b"ok", {"Content-Type": "text/plain"})

    def reset(request: Received) -> Answer:
        recorder.reset()
        receiver.clear()  # the server's own copies too: memory stays one benchmark's worth
        return _json({})

    receiver.answer_with("/webhooks", deliver)
    receiver.answer_with("/_stats", lambda request: _json(recorder.stats()))
    receiver.answer_with("/_dump", lambda request: _json(recorder.arrivals))
    receiver.answer_with("/_reset", reset)
    receiver.serve_forever()


def _json(value) -> Answer:
    return Answer(200, orjson.dumps(value), {"Content-Type": "application/json"})


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
