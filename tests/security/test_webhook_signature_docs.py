"""The verification examples we publish check the raw request bytes, not a re-serialized
object, and answer 401 (without crashing) to a malformed signature header. Each is run as
printed: docs/webhooks.md's Node receiver and Python function, and the dashboard docs page's
Node and Python receivers."""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from paygate.embedded import free_port
from paygate.web.dashboard.app import create_app
from tests.dashboard_client import DashboardClient

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "whsec_dGVzdC1zZWNyZXQtb2YtdHdlbnR5LWZvdXI="
NODE = "/usr/bin/node"
# Signed as sent, but not in the compact form Paygate writes: a raw-bytes verifier accepts it, a
# verifier of JSON.stringify(JSON.parse(body)) refuses it.
SPACED = b'{"event": "webhook.test", "timestamp": 1705314600, "data": {"note": "\\u20b9"}}'
# What SPACED re-serializes to: signing this and sending SPACED must be refused.
COMPACT = '{"event":"webhook.test","timestamp":1705314600,"data":{"note":"₹"}}'.encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def doc_snippet(language: str) -> str:
    (code,) = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)
    return code


def page_snippet(ctx, element_id: str) -> str:
    client = DashboardClient(create_app(ctx))
    client.login()
    page = client.get("/dashboard/docs").text
    match = re.search(rf'<code id="{element_id}"[^>]*>(.*?)</code>', page, re.S)
    assert match, element_id
    return html.unescape(match[1])


def post(port: int, body: bytes, signature: str) -> int:
    headers = {"Content-Type": "application/json", "X-Webhook-Signature": signature}
    return requests.post(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers).status_code


def run_receiver(command: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "WEBHOOK_SECRET": SECRET}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the example receiver did not listen")


def check_receiver(proc: subprocess.Popen, port: int) -> None:
    try:
        assert post(port, SPACED, sign(SPACED)) == 200, "the raw bytes, signed, are refused"
        assert post(port, SPACED, sign(COMPACT)) == 401, "a re-serialized body is what is checked"
        assert post(port, COMPACT, sign(COMPACT)) == 200
        assert post(port, COMPACT, sign(COMPACT, "whsec_other")) == 401
        assert post(port, COMPACT, "\u00e9" * 64) == 401, "a non-ASCII signature header"
        assert post(port, COMPACT, sign(COMPACT)) == 200, "the receiver survived"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


needs_node = pytest.mark.skipif(not os.path.exists(NODE), reason="needs /usr/bin/node")


@needs_node
def test_the_node_example_in_the_webhook_docs_verifies_the_raw_bytes(tmp_path):
    script = tmp_path / "receiver.js"
    script.write_text(doc_snippet("js"))
    check_receiver(*run_receiver([NODE, str(script)]))


def test_the_python_example_in_the_webhook_docs_verifies_the_raw_bytes():
    namespace: dict = {}
    exec(compile(doc_snippet("python"), str(DOC), "exec"), namespace)
    verify = namespace["verify_compatible"]
    assert verify(SPACED, sign(SPACED), SECRET)
    assert not verify(SPACED, sign(COMPACT), SECRET)
    assert not verify(COMPACT, "\u00e9" * 64, SECRET)


@needs_node
def test_the_dashboard_node_snippet_verifies_the_raw_bytes(ctx):
    check_receiver(*run_receiver([NODE, "-e", page_snippet(ctx, "snippet-webhook-node")]))


def test_the_dashboard_python_snippet_verifies_the_raw_bytes(ctx):
    code = page_snippet(ctx, "snippet-webhook-python")
    check_receiver(*run_receiver([sys.executable, "-c", code]))


@pytest.mark.parametrize("where", ["docs/webhooks.md", "the dashboard docs page"])
def test_the_docs_tell_receivers_to_verify_the_raw_bytes(ctx, where):
    if where == "docs/webhooks.md":
        text = DOC.read_text()
    else:
        client = DashboardClient(create_app(ctx))
        client.login()
        text = html.unescape(client.get("/dashboard/docs").text)
    prose = re.sub(r"\s+", " ", text)
    assert "raw bytes" in prose and "re-serialized" in prose
    assert "JSON.stringify(JSON.parse" not in prose
