"""The webhooks API (CONTRACT.md section 3): logs, manual retry, configuration, test event, and
the job counts; in-process against real PostgreSQL and Redis and a real HTTP receiver."""

from __future__ import annotations

import base64
import uuid

import falcon.testing
import orjson

from paygate.api.app import create_app
from paygate.services import webhooks
from tests.fixtures import AUTH, OTHER_AUTH, set_webhook_url

LOG_KEYS = {
    "id",
    "event",
    "status",
    "attempts",
    "created_at",
    "last_attempt_at",
    "next_retry_at",
    "response_code",
    # (beyond, issue 17) where the delivery goes: null for the primary webhook_url.
    "endpoint_id",
    "url",
    # (beyond, issue 17) why it failed: null unless failed.
    "failure_reason",
}


def send_test(api, auth=AUTH) -> str:
    result = api.simulate_post("/api/v1/webhooks/test", headers=auth)
    assert result.status_code == 202, result.text
    return result.json["id"]


def exhaust(ctx, log_id: str) -> None:
    """Run all five attempts now, whatever their due times."""
    for _ in range(ctx.settings.max_webhook_attempts):
        make_due(ctx, log_id)
        webhooks.deliver(ctx, log_id)


def make_due(ctx, log_id: str) -> None:
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE webhook_logs SET next_retry_at = now() WHERE id = %s AND status = 'pending'",
            (log_id,),
        )


def log_row(ctx, log_id: str) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute("SELECT * FROM webhook_logs WHERE id = %s", (log_id,)).fetchone()


# -- GET /api/v1/webhooks ----------------------------------------------------------------------


def test_logs_are_listed_newest_first_with_total_and_pagination(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    ids = [send_test(api) for _ in range(3)]
    first = api.simulate_get("/api/v1/webhooks", params={"limit": "2"}, headers=AUTH)
    assert first.status_code == 200
    body = first.json
    assert body["total"] == 3 and body["limit"] == 2 and body["offset"] == 0
    assert [row["id"] for row in body["data"]] == [ids[2], ids[1]]
    assert set(body["data"][0]) == LOG_KEYS
    assert body["data"][0]["event"] == "webhook.test"
    assert body["data"][0]["status"] == "pending" and body["data"][0]["attempts"] == 0
    rest = api.simulate_get("/api/v1/webhooks?limit=2&offset=2", headers=AUTH).json
    assert [row["id"] for row in rest["data"]] == [ids[0]] and rest["total"] == 3
    default = api.simulate_get("/api/v1/webhooks", headers=AUTH).json
    assert default["limit"] == 10 and default["offset"] == 0 and len(default["data"]) == 3


def test_a_merchant_sees_only_its_own_logs(ctx, api, other_merchant, receiver):
    set_webhook_url(ctx, receiver.url("/mine"))
    set_webhook_url(ctx, receiver.url("/theirs"), merchant_id=other_merchant.id)
    mine = send_test(api)
    theirs = send_test(api, OTHER_AUTH)
    listed = api.simulate_get("/api/v1/webhooks", headers=AUTH).json
    assert [row["id"] for row in listed["data"]] == [mine] and listed["total"] == 1
    listed = api.simulate_get("/api/v1/webhooks", headers=OTHER_AUTH).json
    assert [row["id"] for row in listed["data"]] == [theirs] and listed["total"] == 1


def test_bad_pagination_is_a_400(api):
    for query in ("limit=0", "limit=101", "limit=abc", "offset=-1", "offset=1.5"):
        result = api.simulate_get(f"/api/v1/webhooks?{query}", headers=AUTH)
        assert result.status_code == 400, query
        assert result.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_logs_need_credentials(api):
    assert api.simulate_get("/api/v1/webhooks").status_code == 401


# -- POST /api/v1/webhooks/{id}/retry ---------------------------------------------------------


def test_retry_of_a_failed_log_resets_attempts_and_delivers_it_again(ctx, api, receiver):
    receiver.answer("/hooks", 500)
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(api)
    exhaust(ctx, log_id)
    assert log_row(ctx, log_id)["status"] == "failed"
    assert len(receiver.to("/hooks")) == 5

    receiver.answer("/hooks", 200)
    result = api.simulate_post(f"/api/v1/webhooks/{log_id}/retry", headers=AUTH)
    assert result.status_code == 200
    assert result.json == {"id": log_id, "status": "pending", "message": "Webhook retry scheduled"}
    row = log_row(ctx, log_id)
    assert row["status"] == "pending" and row["attempts"] == 0
    assert row["next_retry_at"] is not None

    assert webhooks.deliver(ctx, log_id) == "success"
    sent = receiver.to("/hooks")
    assert len(sent) == 6
    assert sent[-1].body == sent[0].body  # the stored payload, byte for byte
    listed = api.simulate_get("/api/v1/webhooks", headers=AUTH).json["data"][0]
    assert listed["status"] == "success" and listed["attempts"] == 1
    assert listed["response_code"] == 200 and listed["next_retry_at"] is None


def test_retry_of_an_unknown_foreign_or_malformed_id_is_404(ctx, api, other_merchant, receiver):
    set_webhook_url(ctx, receiver.url(), merchant_id=other_merchant.id)
    set_webhook_url(ctx, receiver.url())
    foreign = send_test(api, OTHER_AUTH)
    for log_id in (foreign, str(uuid.uuid4()), "not-a-uuid", "1"):
        result = api.simulate_post(f"/api/v1/webhooks/{log_id}/retry", headers=AUTH)
        assert result.status_code == 404, log_id
        assert result.json["error"]["code"] == "NOT_FOUND_ERROR"
        assert result.json["error"]["description"] == "Webhook log not found"
    assert log_row(ctx, foreign)["attempts"] == 0


def test_retry_without_a_webhook_url_is_a_400_and_changes_nothing(ctx, api, receiver):
    receiver.answer("/hooks", 500)
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(api)
    exhaust(ctx, log_id)
    set_webhook_url(ctx, None)
    result = api.simulate_post(f"/api/v1/webhooks/{log_id}/retry", headers=AUTH)
    assert result.status_code == 400
    assert result.json["error"]["description"] == "Webhook URL is not configured"
    assert log_row(ctx, log_id)["status"] == "failed"


# -- /api/v1/webhooks/config -------------------------------------------------------------------


def test_config_reads_sets_and_clears_the_url(api, receiver):
    start = api.simulate_get("/api/v1/webhooks/config", headers=AUTH)
    assert start.status_code == 200
    assert start.json == {"webhook_url": None, "webhook_secret": "whsec_test_abc123"}

    url = receiver.url()
    result = api.simulate_post("/api/v1/webhooks/config", json={"webhook_url": url}, headers=AUTH)
    assert result.status_code == 200
    assert result.json == {"webhook_url": url, "webhook_secret": "whsec_test_abc123"}
    assert api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json["webhook_url"] == url

    for cleared in ("", None, "   "):
        api.simulate_post("/api/v1/webhooks/config", json={"webhook_url": url}, headers=AUTH)
        result = api.simulate_post(
            "/api/v1/webhooks/config", json={"webhook_url": cleared}, headers=AUTH
        )
        assert result.status_code == 200 and result.json["webhook_url"] is None


def test_regenerating_the_secret_gives_a_standard_webhooks_secret(api):
    result = api.simulate_post(
        "/api/v1/webhooks/config", json={"regenerate_secret": True}, headers=AUTH
    )
    assert result.status_code == 200
    secret = result.json["webhook_secret"]
    assert secret.startswith("whsec_") and secret != "whsec_test_abc123"
    assert len(base64.b64decode(secret[len("whsec_") :], validate=True)) >= 24
    assert result.json["webhook_url"] is None  # the URL is untouched
    again = api.simulate_post(
        "/api/v1/webhooks/config", json={"regenerate_secret": True}, headers=AUTH
    ).json["webhook_secret"]
    assert again != secret
    assert api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json["webhook_secret"] == again


def test_a_merchant_without_a_secret_gets_one_with_its_first_url(ctx, api, receiver):
    with ctx.db.connection() as conn:
        conn.execute("UPDATE merchants SET webhook_secret = NULL")
    result = api.simulate_post(
        "/api/v1/webhooks/config", json={"webhook_url": receiver.url()}, headers=AUTH
    )
    assert result.json["webhook_secret"].startswith("whsec_")


BAD_CONFIGS = [
    ({"webhook_url": "ftp://93.184.216.34/x"}, "webhook_url"),
    ({"webhook_url": "not a url"}, "webhook_url"),
    ({"webhook_url": 42}, "webhook_url"),
    ({"webhook_url": ["http://93.184.216.34/"]}, "webhook_url"),
    ({"regenerate_secret": "yes"}, "regenerate_secret"),
    ({"url": "http://93.184.216.34/"}, "url"),
    ({}, None),
    ([], None),
]


def test_bad_config_is_a_400_and_changes_nothing(api):
    for body, field in BAD_CONFIGS:
        result = api.simulate_post("/api/v1/webhooks/config", json=body, headers=AUTH)
        assert result.status_code == 400, (body, result.text)
        assert result.json["error"]["code"] == "BAD_REQUEST_ERROR"
        assert result.json["error"].get("field") == field, body
    assert api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json == {
        "webhook_url": None,
        "webhook_secret": "whsec_test_abc123",
    }


def test_malformed_config_json_is_a_400(api):
    result = api.simulate_post("/api/v1/webhooks/config", body=b"{nope", headers=AUTH)
    assert result.status_code == 400


PRIVATE_TARGETS = [
    "http://127.0.0.1:9000/hook",
    "http://localhost:9000/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:9000/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://2130706433/",
]


def test_without_the_switch_private_targets_are_refused_at_configuration(make_ctx):
    strict = make_ctx(PAYGATE_ALLOW_PRIVATE_WEBHOOKS="false")
    api = falcon.testing.TestClient(create_app(strict))
    for url in PRIVATE_TARGETS:
        result = api.simulate_post(
            "/api/v1/webhooks/config", json={"webhook_url": url}, headers=AUTH
        )
        assert result.status_code == 400, url
        assert result.json["error"]["field"] == "webhook_url"
    assert api.simulate_get("/api/v1/webhooks/config", headers=AUTH).json["webhook_url"] is None


def test_without_the_switch_a_public_target_is_accepted(make_ctx):
    strict = make_ctx(PAYGATE_ALLOW_PRIVATE_WEBHOOKS="false")
    api = falcon.testing.TestClient(create_app(strict))
    url = "https://93.184.216.34/hooks"  # configured only: no event is written, nothing is sent
    result = api.simulate_post("/api/v1/webhooks/config", json={"webhook_url": url}, headers=AUTH)
    assert result.status_code == 200 and result.json["webhook_url"] == url


# -- POST /api/v1/webhooks/test ----------------------------------------------------------------


def test_test_event_is_accepted_and_goes_through_the_normal_pipeline(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    result = api.simulate_post("/api/v1/webhooks/test", headers=AUTH)
    assert result.status_code == 202
    assert result.json["event"] == "webhook.test" and result.json["status"] == "pending"
    log_id = result.json["id"]
    assert webhooks.deliver(ctx, log_id) == "success"
    (request,) = receiver.to("/hooks")
    assert request.headers["X-Webhook-Event"] == "webhook.test"
    payload = orjson.loads(request.body)
    assert set(payload) == {"event", "timestamp", "data"}
    assert payload["event"] == "webhook.test" and isinstance(payload["timestamp"], int)
    assert payload["data"]["merchant_id"] == "550e8400-e29b-41d4-a716-446655440000"


def test_test_event_without_a_url_is_a_400_and_writes_nothing(ctx, api):
    result = api.simulate_post("/api/v1/webhooks/test", headers=AUTH)
    assert result.status_code == 400
    assert result.json["error"]["description"] == "Webhook URL is not configured"
    assert api.simulate_get("/api/v1/webhooks", headers=AUTH).json["total"] == 0


# -- GET /api/v1/test/jobs/status --------------------------------------------------------------


def jobs(api) -> dict:
    return api.simulate_get("/api/v1/test/jobs/status").json


def test_job_status_counts_scheduled_retries_as_pending_and_follows_each_state(ctx, api, receiver):
    receiver.answer("/fail", 500)
    set_webhook_url(ctx, receiver.url("/fail"))
    failing = send_test(api)
    assert jobs(api) == {
        "pending": 1,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "worker_status": "stopped",
    }
    assert webhooks.deliver(ctx, failing) == "pending"  # attempt 1 failed, retry in 5 s
    assert jobs(api)["pending"] == 1

    with ctx.db.connection() as conn:  # a worker holds it
        conn.execute("UPDATE webhook_logs SET locked_until = now() + interval '30 seconds'")
    assert jobs(api)["processing"] == 1 and jobs(api)["pending"] == 0
    with ctx.db.connection() as conn:
        conn.execute("UPDATE webhook_logs SET locked_until = NULL")

    exhaust(ctx, failing)
    set_webhook_url(ctx, receiver.url("/ok"))
    webhooks.deliver(ctx, send_test(api))
    assert jobs(api) == {
        "pending": 0,
        "processing": 0,
        "completed": 1,
        "failed": 1,
        "worker_status": "stopped",
    }
