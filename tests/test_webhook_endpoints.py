"""Several webhook endpoints per merchant (issue 17): the API's validation and CRUD, secrets
sealed at rest and shown once, each event delivered only where it is subscribed and signed with
that endpoint's secret, disabled and deleted endpoints, retries and tests per endpoint; in-process
against real PostgreSQL and Redis and a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import falcon.testing
import orjson
import pytest
import standardwebhooks

from paygate.api.app import create_app
from paygate.services import webhook_endpoints, webhooks
from tests.factories import paid_payment
from tests.fixtures import AUTH, OTHER_AUTH, set_webhook_url

BASE = "/api/v1/webhooks/endpoints"


def create(api, auth=AUTH, expect: int = 201, **body) -> dict:
    result = api.simulate_post(BASE, json=body, headers=auth)
    assert result.status_code == expect, result.text
    return result.json


def stored(ctx, endpoint_id: str) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT * FROM webhook_endpoints WHERE id = %s", (endpoint_id,)
        ).fetchone()


def logs_of(ctx, endpoint_id: str | None = None) -> list[dict]:
    with ctx.db.connection() as conn:
        return conn.execute(
            """SELECT * FROM webhook_logs
                WHERE endpoint_id IS NOT DISTINCT FROM %s::uuid ORDER BY created_at, id""",
            (endpoint_id,),
        ).fetchall()


def deliver_all(ctx) -> None:
    with ctx.db.connection() as conn:
        ids = [
            row["id"]
            for row in conn.execute("SELECT id FROM webhook_logs WHERE status = 'pending'")
        ]
    for log_id in ids:
        webhooks.deliver(ctx, str(log_id))


def compatible(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": None}, "url"),
        ({"url": ""}, "url"),
        ({"url": 5}, "url"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "https://example.com/h", "events": "payment.success"}, "events"),
        ({"url": "https://example.com/h", "events": ["payment.nope"]}, "events"),
        ({"url": "https://example.com/h", "events": [1]}, "events"),
        ({"url": "https://example.com/h", "enabled": "yes"}, "enabled"),
        ({"url": "https://example.com/h", "description": 3}, "description"),
        ({"url": "https://example.com/h", "description": "x" * 256}, "description"),
        ({"url": "https://example.com/h", "secret": "whsec_mine"}, "secret"),
    ],
)
def test_bad_endpoints_are_a_400_and_nothing_is_written(ctx, api, body, field):
    result = api.simulate_post(BASE, json=body, headers=AUTH)
    assert result.status_code == 400, result.text
    assert result.json["error"]["code"] == "BAD_REQUEST_ERROR"
    assert result.json["error"].get("field") == field
    with ctx.db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM webhook_endpoints").fetchone()["n"] == 0


def test_a_body_that_is_not_an_object_is_a_400(api):
    result = api.simulate_post(BASE, body=b"[1]", headers=AUTH)
    assert result.status_code == 400
    assert result.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_endpoints_need_credentials(api):
    assert api.simulate_get(BASE).status_code == 401
    assert api.simulate_post(BASE, json={"url": "https://example.com/h"}).status_code == 401


def test_the_cap_on_endpoints_is_a_clear_400(ctx, api):
    for n in range(webhook_endpoints.MAX_ENDPOINTS):
        create(api, url=f"https://example.com/h{n}")
    result = api.simulate_post(BASE, json={"url": "https://example.com/one-more"}, headers=AUTH)
    assert result.status_code == 400
    assert "at most 16 webhook endpoints" in result.json["error"]["description"]
    # deleting one frees a place
    first = api.simulate_get(BASE, headers=AUTH).json["data"][0]["id"]
    assert api.simulate_delete(f"{BASE}/{first}", headers=AUTH).status_code == 200
    create(api, url="https://example.com/one-more")


# -- CRUD and secrets -------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_seals_it_at_rest(ctx, api):
    made = create(
        api,
        url="https://example.com/orders",
        events=["payment.success", "refund.processed", "payment.success"],
        description="  Fulfilment  ",
    )
    assert made["url"] == "https://example.com/orders"
    assert made["events"] == ["payment.success", "refund.processed"]
    assert made["description"] == "Fulfilment"
    assert made["enabled"] is True and made["primary"] is False
    secret = made["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    row = stored(ctx, made["id"])
    assert row["secret_sealed"].startswith("v1:") and secret not in row["secret_sealed"]
    shown = api.simulate_get(f"{BASE}/{made['id']}", headers=AUTH).json
    assert shown["secret"] != secret and shown["secret"].endswith(secret[-4:])
    assert secret[6:-4] not in shown["secret"]
    assert {k: v for k, v in shown.items() if k != "secret"} == {
        k: v for k, v in made.items() if k != "secret"
    }
    listed = api.simulate_get(BASE, headers=AUTH).json["data"]
    assert [item["secret"] for item in listed] == [shown["secret"]]
    with ctx.db.connection() as conn:  # nowhere in the record in the clear
        for table in ("webhook_endpoints", "idempotency_keys", "events", "webhook_logs"):
            hits = conn.execute(
                f"SELECT count(*) AS n FROM {table} t WHERE t::text LIKE %s", (f"%{secret}%",)
            ).fetchone()
            assert hits["n"] == 0, table


def test_an_idempotent_create_replays_with_the_secret_masked(ctx, api):
    headers = {**AUTH, "Idempotency-Key": "endpoint-1"}
    body = {"url": "https://example.com/i"}
    first = api.simulate_post(BASE, json=body, headers=headers)
    again = api.simulate_post(BASE, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json["id"] == first.json["id"]
    assert first.json["secret"].startswith("whsec_") and "•" not in first.json["secret"]
    assert again.json["secret"].endswith(first.json["secret"][-4:]) and "•" in again.json["secret"]
    with ctx.db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM webhook_endpoints").fetchone()["n"] == 1
        bodies = conn.execute("SELECT response_body FROM idempotency_keys").fetchall()
    assert all(first.json["secret"].encode() not in bytes(r["response_body"]) for r in bodies)


def test_the_list_shows_the_primary_first_read_only(ctx, api, receiver):
    made = create(api, url="https://example.com/a")
    listed = api.simulate_get(BASE, headers=AUTH).json
    assert [item["id"] for item in listed["data"]] == [made["id"]] and listed["total"] == 1
    set_webhook_url(ctx, receiver.url())
    listed = api.simulate_get(BASE, headers=AUTH).json
    assert [item["id"] for item in listed["data"]] == ["primary", made["id"]]
    primary = listed["data"][0]
    assert primary["primary"] is True and primary["url"] == receiver.url()
    assert primary["events"] == [] and primary["enabled"] is True
    assert api.simulate_get(f"{BASE}/primary", headers=AUTH).json == primary
    for call in (
        api.simulate_patch(f"{BASE}/primary", json={"enabled": False}, headers=AUTH),
        api.simulate_delete(f"{BASE}/primary", headers=AUTH),
        api.simulate_post(f"{BASE}/primary/rotate-secret", headers=AUTH),
    ):
        assert call.status_code == 400
        assert "/api/v1/webhooks/config" in call.json["error"]["description"]


def test_update_changes_only_what_is_given(ctx, api):
    made = create(api, url="https://example.com/a", description="first")
    path = f"{BASE}/{made['id']}"
    changed = api.simulate_patch(path, json={"events": ["payment.failed"]}, headers=AUTH)
    assert changed.status_code == 200, changed.text
    assert changed.json["events"] == ["payment.failed"]
    assert changed.json["url"] == made["url"] and changed.json["description"] == "first"
    changed = api.simulate_patch(
        path,
        json={"enabled": False, "description": None, "url": "https://example.com/b"},
        headers=AUTH,
    )
    assert changed.json["enabled"] is False and changed.json["description"] is None
    assert changed.json["url"] == "https://example.com/b"
    for body, expect in (({}, 400), ({"url": None}, 400), ({"nope": 1}, 400), ({"events": 1}, 400)):
        assert api.simulate_patch(path, json=body, headers=AUTH).status_code == expect
    assert stored(ctx, made["id"])["url"] == "https://example.com/b"


def test_another_merchants_endpoint_is_a_404(ctx, api, other_merchant):
    theirs = create(api, auth=OTHER_AUTH, url="https://example.com/theirs")
    for call in (
        api.simulate_get(f"{BASE}/{theirs['id']}", headers=AUTH),
        api.simulate_patch(f"{BASE}/{theirs['id']}", json={"enabled": False}, headers=AUTH),
        api.simulate_delete(f"{BASE}/{theirs['id']}", headers=AUTH),
        api.simulate_post(f"{BASE}/{theirs['id']}/rotate-secret", headers=AUTH),
        api.simulate_post(f"{BASE}/{theirs['id']}/test", headers=AUTH),
        api.simulate_get(f"{BASE}/not-a-uuid", headers=AUTH),
        api.simulate_get(f"{BASE}/{uuid.uuid4()}", headers=AUTH),
    ):
        assert call.status_code == 404, call.text
        assert call.json["error"]["code"] == "NOT_FOUND_ERROR"
    assert stored(ctx, theirs["id"])["enabled"] is True
    assert api.simulate_get(BASE, headers=AUTH).json["data"] == []


def test_delete_is_soft_and_the_endpoint_is_gone_from_the_api(ctx, api):
    made = create(api, url="https://example.com/a")
    gone = api.simulate_delete(f"{BASE}/{made['id']}", headers=AUTH)
    assert gone.status_code == 200 and gone.json == {"id": made["id"], "deleted": True}
    assert api.simulate_get(f"{BASE}/{made['id']}", headers=AUTH).status_code == 404
    assert api.simulate_delete(f"{BASE}/{made['id']}", headers=AUTH).status_code == 404
    row = stored(ctx, made["id"])
    assert row["deleted_at"] is not None and row["enabled"] is False


# -- delivery ---------------------------------------------------------------------------------


def test_each_event_goes_only_where_subscribed_signed_with_that_endpoints_secret(
    ctx, api, receiver
):
    payments = create(api, url=receiver.url("/payments"), events=["payment.success"])
    failures = create(api, url=receiver.url("/failures"), events=["payment.failed"])
    everything = create(api, url=receiver.url("/all"))
    paid_payment(ctx, api, vpa="success@test")
    paid_payment(ctx, api, vpa="failure@test")
    deliver_all(ctx)

    def events(path):
        return [orjson.loads(r.body)["event"] for r in receiver.to(path)]

    assert events("/payments") == ["payment.success"]
    assert events("/failures") == ["payment.failed"]
    assert "payment.success" in events("/all") and "payment.failed" in events("/all")
    for path, made in (("/payments", payments), ("/failures", failures), ("/all", everything)):
        for request in receiver.to(path):
            standardwebhooks.Webhook(made["secret"]).verify(request.body, request.headers)
            expected = compatible(made["secret"], request.body)
            assert request.headers["X-Webhook-Signature"] == expected
            others = [m["secret"] for m in (payments, failures, everything) if m is not made]
            for other in others:
                with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
                    standardwebhooks.Webhook(other).verify(request.body, request.headers)
    # The webhook-id is the log id, and each endpoint's log of one event has its own.
    (success_to_payments,) = receiver.to("/payments")
    log_ids = {str(row["id"]) for row in logs_of(ctx, payments["id"])}
    assert success_to_payments.headers["webhook-id"] in log_ids
    listed = api.simulate_get("/api/v1/webhooks", params={"limit": "50"}, headers=AUTH).json
    by_endpoint = {row["endpoint_id"]: row["url"] for row in listed["data"]}
    assert by_endpoint[payments["id"]] == receiver.url("/payments")
    assert by_endpoint[failures["id"]] == receiver.url("/failures")
    assert None not in by_endpoint  # no primary URL: no primary deliveries


def test_the_primary_keeps_getting_every_event_with_the_merchants_secret(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url("/primary"))
    secret = api.simulate_post(
        "/api/v1/webhooks/config", json={"regenerate_secret": True}, headers=AUTH
    ).json["webhook_secret"]
    create(api, url=receiver.url("/other"), events=["refund.processed"])
    paid_payment(ctx, api, vpa="success@test")
    deliver_all(ctx)
    assert receiver.to("/other") == []
    got = receiver.to("/primary")
    assert "payment.success" in [orjson.loads(r.body)["event"] for r in got]
    for request in got:
        standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    for row in logs_of(ctx, None):
        assert row["id"] == row["event_id"]  # the primary's log id is still the event id


def test_a_disabled_endpoint_gets_nothing_and_its_pending_deliveries_end(ctx, api, receiver):
    made = create(api, url=receiver.url("/a"))
    paid_payment(ctx, api, vpa="success@test")  # written while enabled, not yet sent
    pending = logs_of(ctx, made["id"])
    assert pending
    api.simulate_patch(f"{BASE}/{made['id']}", json={"enabled": False}, headers=AUTH)
    paid_payment(ctx, api, vpa="success@test")  # written while disabled: no log at all
    assert len(logs_of(ctx, made["id"])) == len(pending)
    deliver_all(ctx)
    assert receiver.to("/a") == []
    for row in logs_of(ctx, made["id"]):
        assert row["status"] == "failed" and row["response_body"] == "Webhook endpoint is disabled"
    retried = api.simulate_post(f"/api/v1/webhooks/{pending[0]['id']}/retry", headers=AUTH)
    assert retried.status_code == 400
    assert retried.json["error"]["description"] == "Webhook endpoint is disabled"
    refused = api.simulate_post(f"{BASE}/{made['id']}/test", headers=AUTH)
    assert refused.status_code == 400


def test_a_deleted_endpoints_pending_deliveries_end_cleanly_and_its_logs_stay(ctx, api, receiver):
    made = create(api, url=receiver.url("/a"))
    paid_payment(ctx, api, vpa="success@test")
    pending = logs_of(ctx, made["id"])
    api.simulate_delete(f"{BASE}/{made['id']}", headers=AUTH)
    deliver_all(ctx)
    assert receiver.to("/a") == []
    rows = logs_of(ctx, made["id"])
    assert [r["id"] for r in rows] == [r["id"] for r in pending]
    assert all(r["status"] == "failed" for r in rows)
    assert all(r["response_body"] == "Webhook endpoint was deleted" for r in rows)
    listed = api.simulate_get("/api/v1/webhooks", headers=AUTH).json["data"]
    assert {row["url"] for row in listed} == {receiver.url("/a")}
    retried = api.simulate_post(f"/api/v1/webhooks/{rows[0]['id']}/retry", headers=AUTH)
    assert retried.status_code == 400


def test_retry_of_an_endpoint_log_goes_to_that_endpoint_with_its_secret(ctx, api, receiver):
    receiver.answer("/a", 500)
    made = create(api, url=receiver.url("/a"))
    sent = api.simulate_post(f"{BASE}/{made['id']}/test", headers=AUTH)
    assert sent.status_code == 202, sent.text
    log_id = sent.json["id"]
    assert sent.json["endpoint_id"] == made["id"] and sent.json["event"] == "webhook.test"
    assert webhooks.deliver(ctx, log_id) == "pending"
    receiver.answer("/a", 200)
    assert api.simulate_post(f"/api/v1/webhooks/{log_id}/retry", headers=AUTH).status_code == 200
    assert webhooks.deliver(ctx, log_id) == "success"
    first, second = receiver.to("/a")
    for request in (first, second):
        standardwebhooks.Webhook(made["secret"]).verify(request.body, request.headers)
        assert request.headers["webhook-id"] == log_id


def test_rotation_shows_the_new_secret_once_and_the_old_one_overlaps(ctx, api, receiver):
    made = create(api, url=receiver.url("/a"))
    rotated = api.simulate_post(f"{BASE}/{made['id']}/rotate-secret", headers=AUTH)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json["secret"]
    assert new.startswith("whsec_") and new != made["secret"]
    assert rotated.json["previous_secret_until"] is not None
    log_id = api.simulate_post(f"{BASE}/{made['id']}/test", headers=AUTH).json["id"]
    assert webhooks.deliver(ctx, log_id) == "success"
    (request,) = receiver.to("/a")
    standardwebhooks.Webhook(new).verify(request.body, request.headers)
    standardwebhooks.Webhook(made["secret"]).verify(request.body, request.headers)
    assert request.headers["X-Webhook-Signature"] == compatible(new, request.body)
    row = stored(ctx, made["id"])
    assert new not in row["secret_sealed"] and row["previous_secret_sealed"].startswith("v1:")


def test_rotation_without_overlap_drops_the_old_secret(make_ctx, receiver):
    ctx = make_ctx(PAYGATE_WEBHOOK_SECRET_OVERLAP="0")
    api = falcon.testing.TestClient(create_app(ctx), headers={"Content-Type": "application/json"})
    made = create(api, url=receiver.url("/a"))
    new = api.simulate_post(f"{BASE}/{made['id']}/rotate-secret", headers=AUTH).json["secret"]
    log_id = api.simulate_post(f"{BASE}/{made['id']}/test", headers=AUTH).json["id"]
    webhooks.deliver(ctx, log_id)
    (request,) = receiver.to("/a")
    standardwebhooks.Webhook(new).verify(request.body, request.headers)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(made["secret"]).verify(request.body, request.headers)


def test_a_sealed_secret_copied_to_another_endpoint_does_not_open(ctx, api, receiver):
    one = create(api, url=receiver.url("/one"))
    two = create(api, url=receiver.url("/two"))
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE webhook_endpoints SET secret_sealed = %s WHERE id = %s",
            (stored(ctx, one["id"])["secret_sealed"], two["id"]),
        )
    log_id = api.simulate_post(f"{BASE}/{two['id']}/test", headers=AUTH).json["id"]
    webhooks.deliver(ctx, log_id)
    assert receiver.to("/two") == []  # never sent signed with a key that did not open
    shown = api.simulate_get(f"{BASE}/{two['id']}", headers=AUTH).json
    assert shown["secret"] is None


# -- test events ------------------------------------------------------------------------------


def test_the_endpoint_test_goes_to_that_endpoint_only(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url("/primary"))
    one = create(api, url=receiver.url("/one"))
    create(api, url=receiver.url("/two"))
    sent = api.simulate_post(f"{BASE}/{one['id']}/test", headers=AUTH)
    assert sent.status_code == 202
    deliver_all(ctx)
    assert len(receiver.to("/one")) == 1
    assert receiver.to("/two") == [] and receiver.to("/primary") == []


def test_the_contracts_test_goes_to_the_primary_only(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url("/primary"))
    create(api, url=receiver.url("/one"))
    sent = api.simulate_post("/api/v1/webhooks/test", headers=AUTH)
    assert sent.status_code == 202
    deliver_all(ctx)
    assert len(receiver.to("/primary")) == 1 and receiver.to("/one") == []
    assert str(logs_of(ctx, None)[0]["id"]) == sent.json["id"]


def test_the_contracts_test_without_a_url_is_a_400_that_writes_nothing(ctx, api, receiver):
    create(api, url=receiver.url("/one"))
    result = api.simulate_post("/api/v1/webhooks/test", headers=AUTH)
    assert result.status_code == 400
    assert result.json["error"]["description"] == "Webhook URL is not configured"
    with ctx.db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM webhook_logs").fetchone()["n"] == 0


# -- dashboard (in-process; tests/browser/test_webhook_endpoints_page.py drives Chromium) -------


def test_the_dashboard_adds_tests_disables_rotates_and_deletes_endpoints(ctx, receiver):
    from paygate.web.dashboard.app import create_app as dashboard_app
    from tests.dashboard_client import DashboardClient, by_test_id

    client = DashboardClient(dashboard_app(ctx))
    client.login()
    client.get("/dashboard/webhooks")
    found = by_test_id(client.last_html)
    assert "webhook-endpoints" in found["endpoint-add-form"][0].inside
    assert "endpoint-item" not in found

    bad = client.post(
        "/dashboard/webhooks/endpoints",
        {"action": "create", "url": "ftp://x.example", "event:payment.failed": "1"},
    )
    assert bad.status_code == 400 and "url must be an http or https URL" in bad.text
    found = by_test_id(bad.text)
    assert found["endpoint-url-input"][0].attrs["value"] == "ftp://x.example"
    assert "checked" in found["endpoint-event-payment.failed"][0].attrs

    made = client.post(
        "/dashboard/webhooks/endpoints",
        {
            "action": "create",
            "url": receiver.url("/dash"),
            "description": "Fulfilment",
            "event:webhook.test": "1",
            "event:payment.success": "1",
        },
    )
    assert made.status_code == 200 and "no-store" in made.headers.get("Cache-Control", "")
    found = by_test_id(made.text)
    secret = found["endpoint-issued-secret"][0].text
    (item,) = found["endpoint-item"]
    endpoint_id = item.attrs["data-endpoint-id"]
    row = stored(ctx, endpoint_id)
    assert row["url"] == receiver.url("/dash") and row["description"] == "Fulfilment"
    assert row["events"] == ["payment.success", "webhook.test"]
    assert secret.startswith("whsec_") and secret not in row["secret_sealed"]
    again = by_test_id(client.get("/dashboard/webhooks").text)
    assert "endpoint-issued-secret" not in again  # shown once
    assert again["endpoint-secret"][0].text.endswith(secret[-4:])

    act = {"endpoint_id": endpoint_id}
    assert (
        client.post("/dashboard/webhooks/endpoints", {**act, "action": "test"}).status_code == 303
    )
    deliver_all(ctx)
    (request,) = receiver.to("/dash")
    standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    logs = by_test_id(client.get("/dashboard/webhooks").text)
    assert receiver.url("/dash") in logs["webhook-endpoint"][0].text

    client.post("/dashboard/webhooks/endpoints", {**act, "action": "disable"})
    assert stored(ctx, endpoint_id)["enabled"] is False
    client.post("/dashboard/webhooks/endpoints", {**act, "action": "enable"})
    assert stored(ctx, endpoint_id)["enabled"] is True

    rotated = client.post("/dashboard/webhooks/endpoints", {**act, "action": "rotate"})
    new = by_test_id(rotated.text)["endpoint-issued-secret"][0].text
    assert new.startswith("whsec_") and new != secret

    other = client.post(
        "/dashboard/webhooks/endpoints", {"endpoint_id": "nope", "action": "delete"}
    )
    assert other.status_code == 400 or other.status_code == 404
    client.post("/dashboard/webhooks/endpoints", {**act, "action": "delete"})
    assert stored(ctx, endpoint_id)["deleted_at"] is not None
    assert "endpoint-item" not in by_test_id(client.get("/dashboard/webhooks").text)


def test_the_dashboard_refuses_an_endpoint_form_without_its_csrf_token(ctx):
    from paygate.web.dashboard.app import create_app as dashboard_app
    from tests.dashboard_client import DashboardClient

    client = DashboardClient(dashboard_app(ctx))
    client.login()
    client.get("/dashboard/webhooks")
    refused = client.post(
        "/dashboard/webhooks/endpoints",
        {"action": "create", "url": "https://example.com/h"},
        csrf=False,
    )
    assert refused.status_code == 403
    with ctx.db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM webhook_endpoints").fetchone()["n"] == 0
