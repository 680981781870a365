"""The verification examples in docs/webhooks.md work: each is run against real deliveries."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from paygate.services import webhooks
from paygate.testing.receiver import Receiver
from tests.fixtures import AUTH, set_webhook_url

DOC = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"


def snippet(language: str) -> str:
    (code,) = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)
    return code


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("the Node example did not listen")


@pytest.mark.skipif(not os.path.exists("/usr/bin/node"), reason="needs /usr/bin/node")
def test_the_node_example_accepts_real_events_and_rejects_a_forged_one(ctx, api, tmp_path):
    secret = api.simulate_post(
        "/api/v1/webhooks/config", json={"regenerate_secret": True}, headers=AUTH
    ).json["webhook_secret"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "receiver.js"
    script.write_text(snippet("js"))
    proc = subprocess.Popen(
        ["/usr/bin/node", str(script)],
        env={**os.environ, "WEBHOOK_SECRET": secret, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port, proc)
        set_webhook_url(ctx, f"http://127.0.0.1:{port}/webhook")
        log_id = api.simulate_post("/api/v1/webhooks/test", headers=AUTH).json["id"]
        assert webhooks.deliver(ctx, log_id) == "success"
        with ctx.db.connection() as conn:  # the receiver's secret is no longer the merchant's
            conn.execute("UPDATE merchants SET webhook_secret = 'whsec_forged'")
        forged = api.simulate_post("/api/v1/webhooks/test", headers=AUTH).json["id"]
        assert webhooks.deliver(ctx, forged) == "pending"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"webhook.test {log_id}" in out
    listed = api.simulate_get("/api/v1/webhooks", headers=AUTH).json["data"]
    assert [row["response_code"] for row in listed] == [401, 200]


def test_the_python_examples_verify_a_real_delivery(ctx, api):
    namespace: dict = {}
    exec(compile(snippet("python"), str(DOC), "exec"), namespace)
    secret = api.simulate_post(
        "/api/v1/webhooks/config", json={"regenerate_secret": True}, headers=AUTH
    ).json["webhook_secret"]
    with Receiver() as receiver:
        set_webhook_url(ctx, receiver.url())
        log_id = api.simulate_post("/api/v1/webhooks/test", headers=AUTH).json["id"]
        webhooks.deliver(ctx, log_id)
        (request,) = receiver.to("/hooks")
    body, headers = request.body, request.headers
    assert namespace["verify_compatible"](body, headers["X-Webhook-Signature"], secret)
    assert not namespace["verify_compatible"](body + b" ", headers["X-Webhook-Signature"], secret)
    assert namespace["verify_standard"](body, headers, secret)["event"] == "webhook.test"
    with pytest.raises(Exception, match="signature"):
        namespace["verify_standard"](body.replace(b"test", b"tesT"), headers, secret)
