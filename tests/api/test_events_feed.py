"""GET /api/v1/events/feed: credentials, the merchant's own events only, cursor semantics (no
``after``: the head; pages in order without a skip; ``has_more``), bad cursors 400, and each
event's body and headers equal to what the real delivery of the same event sends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import standardwebhooks

from paygate.config import TEST_MERCHANT_ID
from paygate.db import events as events_repo
from paygate.services import event_feed, merchants, payments, webhooks
from tests import factories
from tests.fixtures import AUTH, OTHER_AUTH, set_webhook_url, wait_for

FEED = "/api/v1/events/feed"


def feed(api, after=None, limit=None, headers=AUTH):
    params = {k: v for k, v in (("after", after), ("limit", limit)) if v is not None}
    return api.simulate_get(FEED, params=params, headers=headers)


def settled(api, after: str, count: int) -> None:
    """Wait until ``count`` of the merchant's events after ``after`` show. The feed shows an
    event once every transaction older than it has ended, on the whole server: another test's
    transaction, in another database, may hold a committed event back a moment."""
    wait_for(lambda: len(feed(api, after=after).json["data"]) >= count, timeout=30)


def test_feed_refuses_strangers_bad_cursors_and_limits(api):
    assert feed(api, headers={}).status_code == 401
    assert feed(api).json["data"] == []
    base = feed(api).json["cursor"]
    not_ours = [
        "garbage!",
        "",
        base64.urlsafe_b64encode(b"12.x").decode(),
        base64.urlsafe_b64encode(b"-1.2").decode(),
        base64.urlsafe_b64encode(f"{2**64}.1".encode()).decode(),
        "A" * 65,
    ]
    for cursor in not_ours:
        answer = feed(api, after=cursor)
        assert answer.status_code == 400, (cursor, answer.text)
        assert answer.json["error"]["code"] == "BAD_REQUEST_ERROR"
        assert answer.json["error"]["field"] == "after"
    for limit in ("0", "101", "x"):
        assert feed(api, after=base, limit=limit).status_code == 400


def test_feed_starts_at_the_head_and_pages_through_own_events_in_order(ctx, api, other_merchant):
    before = feed(api).json["cursor"]
    factories.create_payment(api)  # before the start: never in this feed
    settled(api, before, 2)  # (a head is always behind an event still settling)
    start = feed(api).json
    assert start["data"] == [] and start["has_more"] is False
    mine = [factories.create_payment(api)["id"] for _ in range(3)]
    factories.create_payment(api, headers=OTHER_AUTH)  # another merchant's: never in this feed
    payments.process(ctx, mine[0])
    settled(api, start["cursor"], 7)

    first = feed(api, after=start["cursor"], limit=4).json
    assert len(first["data"]) == 4 and first["has_more"] is True
    second = feed(api, after=first["cursor"], limit=4).json
    assert second["has_more"] is False
    seen = first["data"] + second["data"]
    expected = [(pid, name) for pid in mine for name in ("payment.created", "payment.pending")]
    expected.append((mine[0], "payment.success"))
    assert [(payment_of(e), e["event"]) for e in seen] == expected
    # Caught up: the same cursor again gives nothing new and keeps its place.
    again = feed(api, after=second["cursor"]).json
    assert again["data"] == [] and again["has_more"] is False
    factories.create_payment(api, headers=OTHER_AUTH)
    assert feed(api, after=second["cursor"]).json["data"] == []

    # The scan is bounded: past other merchants' events the position moves on anyway.
    with ctx.db.connection() as conn:
        start_at = event_feed.decode_cursor(second["cursor"])
        for _ in range(2):
            factories.create_payment(api, headers=OTHER_AUTH)
        latest = factories.create_payment(api)["id"]
        settled(api, second["cursor"], 2)
        page = events_repo.feed_after(conn, TEST_MERCHANT_ID, start_at, limit=10, scan_limit=3)
        assert page.events == [] and page.has_more is True and page.position > start_at
        rest = events_repo.feed_after(conn, TEST_MERCHANT_ID, page.position, 10, scan_limit=3)
        # 6 events of the other merchant then 2 of ours: the second scan reaches ours.
        while not rest.events:
            rest = events_repo.feed_after(conn, TEST_MERCHANT_ID, rest.position, 10, scan_limit=3)
        assert {e.resource_id for e in rest.events} == {latest}


def payment_of(event: dict) -> str:
    return json.loads(event["webhook"]["body"])["data"]["payment"]["id"]


def test_feed_body_and_headers_are_what_the_real_delivery_sends(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    # Rotate twice: the secret replaced last is a generated (Standard Webhooks) one, so a
    # delivery now carries both standard signatures (the rotation's overlap) and the new HMAC.
    old_secret = rotate(api)
    new_secret = rotate(api)
    assert old_secret != new_secret
    cursor = feed(api).json["cursor"]
    payment = factories.create_payment(api)
    assert api.simulate_post("/api/v1/webhooks/test", headers=AUTH).status_code == 202
    settled(api, cursor, 3)

    page = feed(api, after=cursor).json
    assert [e["event"] for e in page["data"]] == [
        "payment.created",
        "payment.pending",
        "webhook.test",
    ]
    created = page["data"][0]
    assert webhooks.deliver(ctx, created["id"]) == "success"  # the real delivery, signed now
    (sent,) = receiver.wait_for("/hooks", 1)
    received = {k.lower(): v for k, v in sent.headers.items()}

    assert created["webhook"]["body"].encode() == sent.body
    assert payment_of(created) == payment["id"]
    shown = {k.lower(): v for k, v in created["webhook"]["headers"].items()}
    timed = {"webhook-timestamp", "webhook-signature"}
    assert {k: received[k] for k in shown if k not in timed} == {
        k: v for k, v in shown.items() if k not in timed
    }
    assert shown["webhook-id"] == created["id"] == received["webhook-id"]
    assert (
        shown["x-webhook-signature"]
        == hmac.new(new_secret.encode(), sent.body, hashlib.sha256).hexdigest()
    )
    assert len(shown["webhook-signature"].split()) == 2  # the new secret and the previous one
    for secret in (new_secret, old_secret):  # a receiver holding either verifies it
        standardwebhooks.Webhook(secret).verify(sent.body, shown)

    # Stamped at the moment the real delivery was: every header is the delivery's own.
    merchant = merchants.get(ctx, TEST_MERCHANT_ID)
    at = int(received["webhook-timestamp"])
    same = event_feed.read(ctx, merchant, cursor, 1, clock=lambda: at).events[0]
    assert {k.lower(): v for k, v in same.headers.items()} == {
        k: received[k] for k in (h.lower() for h in same.headers)
    }


def rotate(api) -> str:
    config = "/api/v1/webhooks/config"
    answer = api.simulate_post(config, json={"regenerate_secret": True}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json["webhook_secret"]
