"""Webhook secrets: sealed at rest, opened only to sign or to show the merchant, and rotated with
an overlap during which deliveries carry signatures with both the new and the previous secret.

Real PostgreSQL, real deliveries to a real HTTP receiver, verified with the Standard Webhooks
library and with plain HMAC as a receiver would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import uuid
from dataclasses import replace

import pytest
import standardwebhooks

from paygate.config import TEST_MERCHANT_ID
from paygate.errors import SecretUnreadable
from paygate.services import merchants, webhook_secrets, webhooks
from paygate.testing.receiver import Receiver
from paygate.types import Delivery
from paygate.web.dashboard.app import create_app
from paygate.wiring import prepare_database
from tests.dashboard_client import DashboardClient, by_test_id
from tests.fixtures import AUTH, set_webhook_url

LEGACY_ID = str(uuid.UUID("0b7d5c1e-3f0a-4d1b-8a8e-6c2f9d4e7a51"))
LEGACY_SECRET = "whsec_" + base64.b64encode(b"legacy-plaintext-secret-24b").decode()
LEGACY_PREVIOUS = "whsec_" + base64.b64encode(b"legacy-previous-secret-24by").decode()


@pytest.fixture
def client(ctx) -> DashboardClient:
    client = DashboardClient(create_app(ctx))
    client.login()
    return client


def stored(ctx, merchant_id: str = TEST_MERCHANT_ID) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute(
            """SELECT webhook_secret, previous_webhook_secret, previous_webhook_secret_until
                 FROM merchants WHERE id = %s""",
            (merchant_id,),
        ).fetchone()


def every_stored_secret(ctx) -> list[str]:
    with ctx.db.connection() as conn:
        rows = conn.execute("SELECT webhook_secret, previous_webhook_secret FROM merchants")
        return [value for row in rows for value in row.values() if value is not None]


def seed_plaintext_merchant(ctx) -> None:
    """A row as a version before sealing left it: its webhook secrets in plaintext, and its API
    secret as migration 004 leaves an older one (raw SQL)."""
    with ctx.db.connection() as conn:
        conn.execute(
            """INSERT INTO merchants (id, name, email, api_key, webhook_secret,
                                      previous_webhook_secret, previous_webhook_secret_until)
               VALUES (%s, 'Legacy', 'legacy@example.com', 'key_legacy', %s, %s,
                       now() + interval '1 hour')""",
            (LEGACY_ID, LEGACY_SECRET, LEGACY_PREVIOUS),
        )
        conn.execute(
            """INSERT INTO api_keys (id, merchant_id, api_key, legacy_secret)
               VALUES (gen_random_uuid(), %s, 'key_legacy', 'secret_legacy')""",
            (LEGACY_ID,),
        )


def regenerate(api) -> str:
    result = api.simulate_post(
        "/api/v1/webhooks/config", json={"regenerate_secret": True}, headers=AUTH
    )
    assert result.status_code == 200, result.text
    return result.json["webhook_secret"]


def deliver_test_event(ctx, api, receiver: Receiver):
    set_webhook_url(ctx, receiver.url("/hooks"))
    log_id = api.simulate_post("/api/v1/webhooks/test", headers=AUTH).json["id"]
    status = webhooks.deliver(ctx, log_id)
    return log_id, status


def compatible(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verifies(secret: str, request) -> bool:
    try:
        standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    except standardwebhooks.webhooks.WebhookVerificationError:
        return False
    return True


def flip_a_ciphertext_byte(value: str) -> str:
    raw = bytearray(base64.b64decode(value[len("v1:") :]))
    raw[20] ^= 0x01
    return "v1:" + base64.b64encode(bytes(raw)).decode()


# -- at rest -----------------------------------------------------------------------------------


def test_no_plaintext_webhook_secret_is_stored_after_start_up_regenerate_or_a_first_url(
    ctx, api, receiver
):
    seed_plaintext_merchant(ctx)
    prepare_database(ctx.settings)  # start-up seals what older versions left in plaintext
    values = every_stored_secret(ctx)
    assert len(values) == 3 and all(v.startswith("v1:") for v in values), values
    assert not any("whsec_" in v for v in values)
    legacy = stored(ctx, LEGACY_ID)
    prepare_database(ctx.settings)  # idempotent: sealed values are left as they are
    assert stored(ctx, LEGACY_ID) == legacy
    # Sealed values still open to the same secrets.
    assert webhook_secrets.open_stored(ctx, LEGACY_ID, legacy["webhook_secret"]) == LEGACY_SECRET
    assert (
        webhook_secrets.open_stored(ctx, LEGACY_ID, legacy["previous_webhook_secret"])
        == LEGACY_PREVIOUS
    )
    assert api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json == {
        "webhook_url": None,
        "webhook_secret": "whsec_test_abc123",
    }

    new = regenerate(api)
    row = stored(ctx)
    assert row["webhook_secret"].startswith("v1:") and new not in str(row)
    assert row["previous_webhook_secret"].startswith("v1:")
    assert "whsec_test_abc123" not in str(row)

    with ctx.db.connection() as conn:  # a merchant without a secret gets one with its first URL
        conn.execute(
            "UPDATE merchants SET webhook_secret = NULL WHERE id = %s", (TEST_MERCHANT_ID,)
        )
    first = api.simulate_post(
        "/api/v1/webhooks/config", json={"webhook_url": receiver.url()}, headers=AUTH
    ).json["webhook_secret"]
    assert first.startswith("whsec_")
    assert stored(ctx)["webhook_secret"].startswith("v1:") and first not in str(stored(ctx))
    assert not any("whsec_" in v for v in every_stored_secret(ctx))


def test_each_sealing_differs_and_opens_only_for_its_merchant_and_server_key(ctx, make_ctx):
    secret = merchants.new_webhook_secret()
    one = webhook_secrets.seal(ctx, TEST_MERCHANT_ID, secret)
    two = webhook_secrets.seal(ctx, TEST_MERCHANT_ID, secret)
    assert one != two and secret not in one + two
    assert re.fullmatch(r"v1:[A-Za-z0-9+/]+={0,2}", one)
    assert len(base64.b64decode(one[3:])) == 12 + len(secret) + 16  # nonce, ciphertext, tag
    assert webhook_secrets.open_stored(ctx, TEST_MERCHANT_ID, one) == secret
    assert webhook_secrets.open_stored(ctx, TEST_MERCHANT_ID, two) == secret
    with pytest.raises(SecretUnreadable):  # another merchant's row: the associated data differs
        webhook_secrets.open_stored(ctx, LEGACY_ID, one)
    other_key = make_ctx(PAYGATE_SECRET_KEY="another-server-key-of-at-least-32-bytes!")
    with pytest.raises(SecretUnreadable):
        webhook_secrets.open_stored(other_key, TEST_MERCHANT_ID, one)


def test_a_tampered_or_moved_sealed_secret_is_refused_never_used(
    ctx, api, client, receiver, caplog
):
    regenerate(api)
    regenerate(api)  # a previous secret too, still in its overlap window
    row = stored(ctx)
    for forged in (
        flip_a_ciphertext_byte(row["webhook_secret"]),
        webhook_secrets.seal(ctx, LEGACY_ID, "whsec_" + base64.b64encode(b"x" * 24).decode()),
        "v1:not-base64!",
        "v1:" + base64.b64encode(b"short").decode(),
    ):
        with ctx.db.connection() as conn:
            conn.execute("UPDATE merchants SET webhook_secret = %s", (forged,))
        shown = api.simulate_get("/api/v1/webhooks/config", headers=AUTH)
        assert shown.status_code == 500, shown.text
        assert shown.json["error"]["code"] == "SERVER_ERROR"
        assert "webhook_secret" not in shown.json
        log_id, status = deliver_test_event(ctx, api, receiver)
        assert status == "pending"  # a failed attempt, retried on the schedule
        assert receiver.requests == [], "a delivery went out with an unreadable secret"
        (attempt,) = webhooks.detail(
            ctx, merchants.record(ctx, TEST_MERCHANT_ID), log_id
        ).attempt_log
        assert attempt.error == "webhook secret cannot be decrypted"
    assert "does not decrypt" in caplog.text
    page = client.get("/dashboard/webhooks")  # still usable, saying what is wrong
    assert page.status_code == 500 and "cannot be decrypted" in page.text
    assert by_test_id(page.text)["webhook-secret"][0].text == ""
    assert by_test_id(page.text)["regenerate-secret-button"]
    assert client.get("/dashboard/docs").status_code == 200  # a placeholder in the snippet

    # The way out: regenerate. The unreadable secret does not become the previous one.
    assert client.post("/dashboard/webhooks", {"action": "regenerate"}).status_code == 303
    fresh = api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json["webhook_secret"]
    assert stored(ctx)["previous_webhook_secret"] is None
    log_id, status = deliver_test_event(ctx, api, receiver)
    assert status == "success"
    (request,) = receiver.requests
    assert request.headers["X-Webhook-Signature"] == compatible(fresh, request.body)
    assert request.headers["webhook-signature"].count("v1,") == 1


# -- rotation with an overlap --------------------------------------------------------------------


def test_during_the_overlap_a_delivery_verifies_with_the_old_secret_and_the_new(ctx, api, receiver):
    old = regenerate(api)
    new = regenerate(api)
    _, status = deliver_test_event(ctx, api, receiver)
    assert status == "success"
    (request,) = receiver.requests
    # The Standard Webhooks header carries both signatures, the new one first.
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert verifies(old, request), "a receiver with the old secret must still verify"
    assert verifies(new, request)
    assert not verifies(merchants.new_webhook_secret(), request)
    # X-Webhook-Signature is the new secret's.
    assert request.headers["X-Webhook-Signature"] == compatible(new, request.body)
    until = stored(ctx)["previous_webhook_secret_until"]
    config = api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json
    assert config == {"webhook_url": receiver.url("/hooks"), "webhook_secret": new}
    hours = (until - stored_now(ctx)).total_seconds() / 3600
    assert 23.9 < hours <= 24.0  # PAYGATE_WEBHOOK_SECRET_OVERLAP's default


def test_after_the_overlap_only_the_new_secret_signs(ctx, api, receiver):
    old = regenerate(api)
    new = regenerate(api)
    with ctx.db.connection() as conn:  # the window ends
        conn.execute(
            "UPDATE merchants SET previous_webhook_secret_until = now() - interval '1 second'"
        )
    log_id, status = deliver_test_event(ctx, api, receiver)
    assert status == "success"
    (request,) = receiver.requests
    assert request.headers["webhook-signature"].count("v1,") == 1
    assert verifies(new, request) and not verifies(old, request)
    assert request.headers["X-Webhook-Signature"] == compatible(new, request.body)


def test_a_retry_is_signed_with_the_secrets_valid_when_it_is_sent(ctx, api, receiver):
    receiver.status = 500
    first = regenerate(api)
    log_id, status = deliver_test_event(ctx, api, receiver)
    assert status == "pending"
    second = regenerate(api)
    third = regenerate(api)  # rotating again within the window replaces the previous secret
    receiver.status = 200
    assert api.simulate_post(f"/api/v1/webhooks/{log_id}/retry", headers=AUTH).status_code == 200
    assert webhooks.deliver(ctx, log_id) == "success"
    before, after = receiver.requests
    assert before.body == after.body  # the stored payload, byte for byte
    assert verifies(first, before)
    assert verifies(third, after) and verifies(second, after) and not verifies(first, after)


def test_an_overlap_of_zero_switches_at_once(make_ctx, receiver):
    from falcon.testing import TestClient

    from paygate.api.app import create_app as create_api

    ctx = make_ctx(PAYGATE_WEBHOOK_SECRET_OVERLAP="0")
    api = TestClient(create_api(ctx), headers={"Content-Type": "application/json"})
    old = regenerate(api)
    new = regenerate(api)
    assert stored(ctx)["previous_webhook_secret"] is None
    _, status = deliver_test_event(ctx, api, receiver)
    (request,) = receiver.requests
    assert status == "success" and verifies(new, request) and not verifies(old, request)


def test_the_notifier_signs_with_every_secret_it_is_given(receiver):
    from paygate.builtin.notifiers.hmac_webhook import HmacWebhookNotifier

    new, old = merchants.new_webhook_secret(), merchants.new_webhook_secret()
    delivery = Delivery(
        id="msg_rotation",
        event="webhook.test",
        url=receiver.url("/hooks"),
        body=b'{"event":"webhook.test"}',
        secret=new,
        attempt=1,
        timestamp=int(__import__("time").time()),
        allow_private=True,
        previous_secrets=(old,),
    )
    assert HmacWebhookNotifier().deliver(delivery).ok
    (request,) = receiver.requests
    assert verifies(new, request) and verifies(old, request)
    assert new not in repr(delivery) and old not in repr(delivery)
    # A third-party notifier built before previous_secrets existed still constructs deliveries.
    assert replace(delivery, previous_secrets=()).previous_secrets == ()


# -- shown to the merchant exactly -------------------------------------------------------------


def test_the_api_and_the_dashboard_show_the_current_secret_exactly(ctx, api, client):
    prepare_database(ctx.settings)  # the seeded test secret is sealed now
    assert stored(ctx)["webhook_secret"].startswith("v1:")
    page = by_test_id(client.get("/dashboard/webhooks").text)
    assert page["webhook-secret"][0].text == "whsec_test_abc123"
    assert api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json["webhook_secret"] == (
        "whsec_test_abc123"
    )

    result = client.post("/dashboard/webhooks", {"action": "regenerate", "webhook_url": ""})
    assert result.status_code == 303
    page = client.get("/dashboard/webhooks").text
    assert "previous secret" in page.lower()
    shown = by_test_id(page)["webhook-secret"][0].text
    assert shown.startswith("whsec_") and shown != "whsec_test_abc123"
    assert by_test_id(page)["webhook-previous-secret-until"]
    assert api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json["webhook_secret"] == shown
    docs = by_test_id(client.get("/dashboard/docs").text)
    assert shown in docs["code-snippet-webhook"][0].text
    assert "next to the new one for 24 hours" in " ".join(client.last_html.split())
    assert merchants.get(ctx, TEST_MERCHANT_ID).webhook_secret == shown


def test_secrets_stay_out_of_reprs_logs_and_the_credential_cache(ctx, api, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    old = regenerate(api)
    new = regenerate(api)
    deliver_test_event(ctx, api, receiver)
    merchant = merchants.get(ctx, TEST_MERCHANT_ID)
    assert merchant.webhook_secret == new
    assert new not in repr(merchant) and "v1:" not in repr(merchant)
    cached = merchants.authenticate(ctx, AUTH["X-Api-Key"], AUTH["X-Api-Secret"])
    assert cached.webhook_secret is None  # the hot path's cache keeps the sealed form only
    assert new not in caplog.text and old not in caplog.text


def stored_now(ctx):
    with ctx.db.connection() as conn:
        return conn.execute("SELECT now() AS now").fetchone()["now"]


def test_the_documented_python_verifiers_accept_either_secret_during_the_overlap(
    ctx, api, receiver
):
    from tests.test_webhooks_docs import DOC, snippet

    namespace: dict = {}
    exec(compile(snippet("python"), str(DOC), "exec"), namespace)
    old = regenerate(api)
    new = regenerate(api)
    deliver_test_event(ctx, api, receiver)
    (request,) = receiver.requests
    body, headers = request.body, request.headers
    assert namespace["verify_standard"](body, headers, old)["event"] == "webhook.test"
    assert namespace["verify_standard"](body, headers, old, new)["event"] == "webhook.test"
    assert namespace["verify_compatible"](body, headers["X-Webhook-Signature"], old, new)
    assert not namespace["verify_compatible"](body, headers["X-Webhook-Signature"], old)
    with pytest.raises(Exception, match="signature"):
        namespace["verify_standard"](body + b" ", headers, old, new)
