"""Why a delivery failed and where it went (issue 17, operator trial): the API's
``failure_reason``, the dashboard's delivery page, and the payment page's deliveries and
timeline naming each delivery's endpoint; in-process against real PostgreSQL and Redis and a
real HTTP receiver."""

from __future__ import annotations

import socket

import pytest

from paygate.services import webhooks
from paygate.testing.receiver import Answer
from tests.factories import paid_payment
from tests.fixtures import AUTH, set_webhook_url
from tests.test_webhook_endpoints import create, deliver_all, logs_of
from tests.test_webhooks_api import exhaust, send_test


@pytest.fixture
def dashboard(ctx):
    from paygate.web.dashboard.app import create_app as dashboard_app
    from tests.dashboard_client import DashboardClient

    client = DashboardClient(dashboard_app(ctx))
    client.login()
    return client


def listed(api) -> dict[str, dict]:
    data = api.simulate_get("/api/v1/webhooks", params={"limit": "100"}, headers=AUTH).json
    return {row["id"]: row for row in data["data"]}


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_delivery_to_an_endpoint_disabled_since_says_why_in_the_api_and_dashboard(
    ctx, api, receiver, dashboard
):
    from tests.dashboard_client import by_test_id

    set_webhook_url(ctx, receiver.url("/primary"))
    made = create(api, url=receiver.url("/a"))
    payment = paid_payment(ctx, api, vpa="success@test")
    api.simulate_patch(
        f"/api/v1/webhooks/endpoints/{made['id']}", json={"enabled": False}, headers=AUTH
    )
    deliver_all(ctx)
    failed = [str(row["id"]) for row in logs_of(ctx, made["id"])]
    delivered = [str(row["id"]) for row in logs_of(ctx, None)]
    assert failed and delivered

    rows = listed(api)
    for log_id in failed:
        assert rows[log_id]["status"] == "failed"
        assert rows[log_id]["failure_reason"] == "Webhook endpoint is disabled"
    for log_id in delivered:
        assert rows[log_id]["status"] == "success" and rows[log_id]["failure_reason"] is None

    page = by_test_id(dashboard.get(f"/dashboard/webhooks/{failed[0]}").text)
    assert page["webhook-detail-failure-reason"][0].text == "Webhook endpoint is disabled"
    assert page["webhook-detail-response"][0].text == "not sent"
    logs = by_test_id(dashboard.get("/dashboard/webhooks").text)
    titles = {
        row.attrs["data-webhook-id"]: cell.attrs.get("title")
        for row, cell in zip(logs["webhook-log-item"], logs["webhook-response-code"], strict=True)
    }
    assert titles[failed[0]] == "Webhook endpoint is disabled"
    assert titles[delivered[0]] is None
    page = by_test_id(dashboard.get(f"/dashboard/webhooks/{delivered[0]}").text)
    assert "webhook-detail-failure-reason" not in page
    assert page["webhook-detail-response"][0].text == "200"

    # The payment page: each delivery names where it went, and the failures say why.
    page = by_test_id(dashboard.get(f"/dashboard/transactions/{payment['id']}").text)
    targets = [element.text for element in page["delivery-endpoint"]]
    assert f"To primary ({receiver.url('/primary')})" in targets
    assert f"To {receiver.url('/a')}" in targets
    assert {e.text for e in page["delivery-failure-reason"]} == {"Webhook endpoint is disabled"}
    delivered_lines = [e.text for e in page["timeline-webhook_success"]]
    assert any(
        "Webhook payment.created delivered" in line
        and f"To primary ({receiver.url('/primary')})" in line
        for line in delivered_lines
    ), delivered_lines
    assert {e.text for e in page["timeline-endpoint"]} == {
        f"To primary ({receiver.url('/primary')})",
        f"To {receiver.url('/a')}",
    }
    failed_lines = [e.text for e in page["timeline-webhook_failed"]]
    assert any(
        "Webhook payment.created failed" in line
        and f"To {receiver.url('/a')}" in line
        and "0 attempts: Webhook endpoint is disabled; retry it by hand" in line
        for line in failed_lines
    ), failed_lines


def test_a_deleted_endpoints_delivery_says_so(ctx, api, receiver):
    made = create(api, url=receiver.url("/a"))
    paid_payment(ctx, api, vpa="success@test")
    api.simulate_delete(f"/api/v1/webhooks/endpoints/{made['id']}", headers=AUTH)
    deliver_all(ctx)
    rows = listed(api)
    for row in logs_of(ctx, made["id"]):
        assert rows[str(row["id"])]["failure_reason"] == "Webhook endpoint was deleted"


def test_a_delivery_out_of_attempts_gives_the_last_answer_as_its_reason(
    ctx, api, receiver, dashboard
):
    from tests.dashboard_client import by_test_id

    set_webhook_url(ctx, receiver.url("/down"))
    receiver.answer("/down", Answer(503, b"maintenance until 05:00"))
    log_id = send_test(api)
    webhooks.deliver(ctx, log_id)
    assert listed(api)[log_id]["failure_reason"] is None  # pending: a retry is scheduled
    exhaust(ctx, log_id)
    row = listed(api)[log_id]
    assert row["status"] == "failed"
    assert row["failure_reason"] == "HTTP 503: maintenance until 05:00"
    page = by_test_id(dashboard.get(f"/dashboard/webhooks/{log_id}").text)
    assert page["webhook-detail-failure-reason"][0].text == "HTTP 503: maintenance until 05:00"
    assert page["webhook-detail-response"][0].text == "503"

    # A manual retry that succeeds clears the reason.
    receiver.answer("/down", 200)
    assert api.simulate_post(f"/api/v1/webhooks/{log_id}/retry", headers=AUTH).status_code == 200
    assert listed(api)[log_id]["failure_reason"] is None
    assert webhooks.deliver(ctx, log_id) == "success"
    assert listed(api)[log_id]["failure_reason"] is None


def test_a_delivery_nobody_answered_gives_the_error_as_its_reason(ctx, api):
    set_webhook_url(ctx, f"http://127.0.0.1:{free_port()}/gone")
    log_id = send_test(api)
    exhaust(ctx, log_id)
    row = listed(api)[log_id]
    assert row["status"] == "failed" and row["response_code"] is None
    assert row["failure_reason"].startswith("connection error")


def test_a_primary_delivery_whose_url_was_removed_says_so(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url("/primary"))
    log_id = send_test(api)
    set_webhook_url(ctx, None)
    assert webhooks.deliver(ctx, log_id) == "no_url"
    assert listed(api)[log_id]["failure_reason"] == "No webhook URL configured"
