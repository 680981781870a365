"""paygate_client.webhooks.verify against headers made by the gateway's own signing code (the
``webhook`` notifier), not a re-implementation: both signatures, rotation, tolerance, raw
bytes, and the preference for Standard Webhooks."""

from __future__ import annotations

import base64
import json

import pytest
from paygate_client import SignatureVerificationError, models, webhooks

from paygate import Delivery
from paygate.builtin.notifiers.hmac_webhook import signed_headers

NOW = 1_765_000_000
NEW = "whsec_" + base64.b64encode(b"n" * 24).decode()
OLD = "whsec_" + base64.b64encode(b"o" * 24).decode()
LEGACY = "whsec_test_abc123"  # the seeded secret: not base64, so X-Webhook-Signature only
EVENT = {
    "event": "payment.success",
    "timestamp": NOW,
    "data": {"payment": {"id": "pay_AAAAAAAAAAAAAAAA", "amount": 50000, "vpa": "ü@test"}},
}
BODY = json.dumps(EVENT, separators=(",", ":"), ensure_ascii=False).encode()


def headers_for(secret: str, previous: tuple[str, ...] = (), body: bytes = BODY) -> dict:
    delivery = Delivery(
        id="5b0f7c7e-1d7e-4c1c-9a53-3a9d0e1f2a3b",
        event="payment.success",
        url="http://127.0.0.1/hooks",
        body=body,
        secret=secret,
        attempt=1,
        timestamp=NOW,
        previous_secrets=previous,
    )
    return signed_headers(delivery)


def test_a_standard_webhooks_delivery_verifies_and_gives_the_event():
    headers = headers_for(NEW)
    assert "webhook-signature" in headers
    assert webhooks.verify(BODY, headers, NEW, now=NOW + 10) == EVENT
    # Any mapping, any case of header names; the body as text is its UTF-8 bytes.
    upper = {name.upper(): value for name, value in headers.items()}
    assert webhooks.verify(BODY.decode(), upper, NEW, now=NOW) == EVENT


def test_during_a_rotation_either_secret_verifies_and_several_may_be_given():
    headers = headers_for(NEW, previous=(OLD,))
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (NEW, OLD, [OLD, NEW], (LEGACY, NEW)):
        assert webhooks.verify(BODY, headers, secret, now=NOW) == EVENT
    other = "whsec_" + base64.b64encode(b"x" * 24).decode()
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(BODY, headers, other, now=NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, h: (body.replace(b"50000", b"90000"), h),
        # a parsed and re-serialized body (Python's default separators): other bytes
        lambda body, h: (json.dumps(json.loads(body)).encode(), h),
        lambda body, h: (body, {**h, "webhook-id": "another-id"}),
        lambda body, h: (body, {**h, "webhook-timestamp": str(NOW + 1)}),
        lambda body, h: (body, {**h, "webhook-signature": "v1," + "A" * 44}),
        lambda body, h: (body, {**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}),
    ],
)  # fmt: skip
def test_a_changed_body_or_header_is_refused(tamper):
    body, headers = tamper(BODY, headers_for(NEW))
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(body, headers, NEW, now=NOW)


def test_the_timestamp_must_be_within_the_tolerance():
    headers = headers_for(NEW)
    assert webhooks.verify(BODY, headers, NEW, now=NOW + 300) == EVENT
    for now in (NOW + 301, NOW - 301):
        with pytest.raises(SignatureVerificationError, match="more than 300 s"):
            webhooks.verify(BODY, headers, NEW, now=now)
    assert webhooks.verify(BODY, headers, NEW, tolerance=None, now=NOW + 86400) == EVENT
    with pytest.raises(SignatureVerificationError, match="not a number"):
        webhooks.verify(BODY, {**headers, "webhook-timestamp": "soon"}, NEW, tolerance=None)


def test_the_compatible_signature_is_checked_for_a_secret_that_is_not_standard():
    headers = headers_for(LEGACY)
    assert "webhook-signature" not in headers and "X-Webhook-Signature" in headers
    assert webhooks.verify(BODY, headers, LEGACY) == EVENT
    with pytest.raises(SignatureVerificationError, match="does not match"):
        webhooks.verify(BODY, headers, "whsec_test_other")
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(BODY + b" ", headers, LEGACY)


def test_standard_webhooks_is_preferred_and_a_failure_there_does_not_fall_back():
    headers = headers_for(NEW)
    # A broken X-Webhook-Signature does not matter when the Standard signature verifies...
    assert webhooks.verify(BODY, {**headers, "X-Webhook-Signature": "00"}, NEW, now=NOW) == EVENT
    # ...and a stale Standard timestamp is refused although X-Webhook-Signature is valid.
    with pytest.raises(SignatureVerificationError):
        webhooks.verify(BODY, headers, NEW, now=NOW + 3600)
    # Without the webhook-* headers, the compatible signature of the same secret verifies.
    only_compatible = {"X-Webhook-Signature": headers["X-Webhook-Signature"]}
    assert webhooks.verify(BODY, only_compatible, NEW) == EVENT


def test_missing_headers_and_a_parsed_body_are_refused_clearly():
    with pytest.raises(SignatureVerificationError, match="no signature headers"):
        webhooks.verify(BODY, {"Content-Type": "application/json"}, NEW)
    with pytest.raises(TypeError, match="raw request body"):
        webhooks.verify(EVENT, headers_for(NEW), NEW, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="secret"):
        webhooks.verify(BODY, headers_for(NEW), "")


def test_the_event_feed_parses_into_typed_events():
    """GET /api/v1/events/feed (the CLI's endpoint): parsed from a literal answer; a feed
    event's body and headers verify like a delivery."""
    headers = headers_for(NEW)
    answer = {
        "data": [
            {
                "id": "5b0f7c7e-1d7e-4c1c-9a53-3a9d0e1f2a3b",
                "event": "payment.success",
                "created_at": "2026-12-06T00:00:01Z",
                "webhook": {"headers": headers, "body": BODY.decode()},
                "later_key": 1,
            }
        ],
        "cursor": "c_42",
        "has_more": True,
    }
    feed = models.EventFeed.from_dict(answer)
    assert (feed.cursor, feed.has_more, len(feed.data)) == ("c_42", True, 1)
    (event,) = feed.data
    assert event.event == "payment.success" and event.created_at.isoformat() == (
        "2026-12-06T00:00:01+00:00"
    )
    assert event.raw["later_key"] == 1
    assert webhooks.verify(event.body, event.headers, NEW, now=NOW) == EVENT
    empty = models.EventFeed.from_dict({"data": [], "cursor": "c_0", "has_more": False})
    assert empty.data == [] and empty.cursor == "c_0"


def test_models_keep_unknown_keys_and_leave_absent_fields_none():
    payment = models.Payment.from_dict(
        {
            "id": "pay_A",
            "order_id": "order_B",
            "amount": 50000,
            "currency": "INR",
            "method": "card",
            "status": "pending",
            "card_network": "visa",
            "card_last4": "3220",
            "next_action": {"type": "redirect", "url": "https://acs.example/c/1"},
            "created_at": "2026-12-06T00:00:00Z",
            "brand_new": {"x": 1},
        }
    )
    assert payment.next_action == models.NextAction("redirect", "https://acs.example/c/1")
    assert payment.vpa is None and payment.routing is None and payment.updated_at is None
    assert payment.raw["brand_new"] == {"x": 1} and payment.is_pending
    endpoint = models.WebhookEndpoint.from_dict(
        {
            "id": "primary",
            "url": "https://m.example/hooks",
            "events": [],
            "enabled": True,
            "primary": True,
            "circuit": {"state": "open", "failures": 5, "retry_at": "2026-12-06T00:05:00Z"},
        }
    )
    assert endpoint.circuit.state == "open" and endpoint.circuit.retry_at.minute == 5
    with pytest.raises(AttributeError):
        payment.status = "success"  # type: ignore[misc]
