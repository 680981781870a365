"""The built-in notifier builds each POST without ``PreparedRequest.prepare``'s per-call work
(docs/performance.md, "Issue 20"): what it sends must be exactly what ``prepare`` would build,
and a URL with credentials still gets its Authorization header."""

from __future__ import annotations

import base64
import time

import pytest
from requests.models import PreparedRequest

from paygate.builtin.notifiers import hmac_webhook
from paygate.testing.receiver import Receiver
from paygate.types import Delivery


def delivery(url: str) -> Delivery:
    return Delivery(
        id="0b0e5f7e-0000-4000-8000-000000000001",
        event="payment.success",
        url=url,
        body=b'{"event": "payment.success", "note": "\xc3\xa9"}',
        secret="whsec_dGVzdF9zZWNyZXRfMTIzNDU2Nzg5MA==",
        attempt=2,
        timestamp=int(time.time()),
        timeout=2.0,
        allow_private=True,
    )


def prepared(d: Delivery) -> PreparedRequest:
    request = PreparedRequest()
    request.prepare(method="POST", url=d.url, headers=hmac_webhook.signed_headers(d), data=d.body)
    return request


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/hooks",
        "https://hooks.example.com/paygate?x=a b&y=1",
        "https://bücher.example/hooks/ünïcode",
        "http://user:p%40ss@hooks.example:8443/hooks",
    ],
)
def test_the_request_is_what_prepare_builds(url):
    d = delivery(url)
    ours, theirs = hmac_webhook._request(d), prepared(d)
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert dict(ours.headers) == dict(theirs.headers)
    assert ("Authorization" in ours.headers) == ("@" in url)


def test_credentials_in_the_url_reach_the_receiver_as_basic_auth():
    with Receiver() as receiver:
        plain = receiver.url("/hooks")
        url = plain.replace("http://", "http://merchant:s3cret@")
        result = hmac_webhook.HmacWebhookNotifier().deliver(delivery(url))
        assert result.ok, result
        (got,) = receiver.wait_for("/hooks", 1)
    headers = {name.lower(): value for name, value in got.headers.items()}
    assert headers["authorization"] == "Basic " + base64.b64encode(b"merchant:s3cret").decode()
    assert got.body == delivery(url).body
