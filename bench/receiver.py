"""The merchant's webhook receiver for the benchmark: answers 200 and verifies every signature.

Runs as its own process (``python -m bench.receiver PORT SECRET``) so its CPU is not the
driver's. A minimal asyncio HTTP/1.1 server with keep-alive: Paygate's notifier keeps
connections open, as a merchant's real server would let it. Every delivery is checked two ways,
``X-Webhook-Signature`` (hex HMAC of the body with the secret's UTF-8 bytes) and, for a
``whsec_`` secret, the Standard Webhooks ``webhook-signature``; each arrival is recorded as
(event, resource id, webhook-id, CLOCK_MONOTONIC seconds, signature ok).

Control endpoints for the driver: ``GET /_stats`` (counts), ``GET /_dump`` (every arrival),
``POST /_reset``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import sys
import time

import orjson

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


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


def _answer(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


async def handle(recorder: Recorder, reader, writer) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head[:-4].split(b"\r\n")
            method, path, _ = request_line.split(b" ", 2)
            headers = {}
            for line in lines:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            body = await reader.readexactly(length) if length else b""
            if path == b"/_stats":
                writer.write(_answer(orjson.dumps(recorder.stats())))
            elif path == b"/_dump":
                writer.write(_answer(orjson.dumps(recorder.arrivals)))
            elif path == b"/_reset" and method == b"POST":
                recorder.reset()
                writer.write(_answer(b"{}"))
            else:
                recorder.record(headers, body)
                writer.write(OK)
            if headers.get(b"connection", b"").lower() == b"close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int, secret: str) -> None:
    recorder = Recorder(secret)
    server = await asyncio.start_server(
        lambda r, w: handle(recorder, r, w), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
