"""Metrics (paygate.metrics): route templates as labels (never raw ids), the scrape-time state
of the queues, a source that fails without failing the scrape, the optional Bearer token, and
the Grafana dashboard and alert rules in deploy/ naming only metrics Paygate exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import falcon.testing
import pytest
import yaml

from paygate import metrics
from paygate.api.app import create_app
from tests import factories
from tests.fixtures import AUTH
from tests.metrics_scrape import Scrape

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "paygate.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\bpaygate_[a-z0-9_]+")
ROUTE = "paygate_http_request_duration_seconds_count"


def scrape(client, **headers) -> Scrape:
    answer = client.simulate_get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return Scrape(answer.text)


@pytest.mark.integration
def test_requests_are_labelled_by_route_template_and_the_queues_state_is_read(ctx, api):
    before = scrape(api)
    payment = factories.create_payment(api, method={"method": "upi", "vpa": "success@test"})
    for _ in range(3):
        assert (
            api.simulate_get(f"/api/v1/payments/{payment['id']}", headers=AUTH).status == "200 OK"
        )
    assert api.simulate_get("/api/v1/payments/pay_missing0000000", headers=AUTH).status_code == 404
    assert api.simulate_get("/no/such/path/pay_x").status_code == 404
    after = scrape(api)

    template = "/api/v1/payments/{payment_id}"
    moved = after.value(ROUTE, route=template, method="GET", status="200") - before.value(
        ROUTE, route=template, method="GET", status="200"
    )
    assert moved == 3
    assert (
        after.value(ROUTE, route=template, status="404")
        - before.value(ROUTE, route=template, status="404")
        == 1
    )
    assert after.value(ROUTE, route="unmatched", status="404") >= 1
    assert after.value(ROUTE, route="/api/v1/payments", method="POST", status="201") >= 1
    routes = after.labels(ROUTE, "route")
    # No raw ids (a template's ``{order_id}`` is not one): whatever other tests asked before.
    assert not [r for r in routes if re.search(r"/(pay|order|rfnd)_", r)], routes
    assert (
        after.value("paygate_payments_total", processor="test", outcome="created")
        - (before.value("paygate_payments_total", processor="test", outcome="created"))
        == 1
    )
    # The record and the queue, read at scrape time: the payment waits (no worker here).
    assert after.value("paygate_metrics_source_up", source="database") == 1
    assert after.value("paygate_metrics_source_up", source="redis") == 1
    assert after.value("paygate_jobs_pending", kind="payments", state="due") == 1
    assert after.value("paygate_jobs_oldest_due_age_seconds", kind="payments") >= 0
    assert after.value("paygate_queue_length") >= 1
    assert after.labels("paygate_webhook_circuits", "state") == {"closed", "open", "half_open"}


@pytest.mark.integration
def test_the_token_guards_metrics_when_set(make_ctx):
    """With PAYGATE_METRICS_TOKEN, only ``Authorization: Bearer <token>`` gets the metrics; a
    refusal is the contract's 401 envelope, and the token appears in no answer."""
    client = falcon.testing.TestClient(
        create_app(make_ctx(PAYGATE_METRICS_TOKEN="t0ken-for-prometheus"))
    )
    refused = client.simulate_get("/metrics")
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "AUTHENTICATION_ERROR"
    assert refused.headers["www-authenticate"] == "Bearer"
    wrong = client.simulate_get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "t0ken" not in wrong.text
    scraped = scrape(client, Authorization="Bearer t0ken-for-prometheus")
    assert scraped.value("paygate_metrics_source_up", source="database") == 1
    assert "t0ken" not in "".join(str(s) for s in scraped.samples)


def test_the_token_check():
    assert metrics.token_accepted("", None)
    assert metrics.token_accepted("abc", "Bearer abc")
    assert metrics.token_accepted("abc", "bearer abc")
    assert not metrics.token_accepted("abc", None)
    assert not metrics.token_accepted("abc", "Basic abc")
    assert not metrics.token_accepted("abc", "Bearer abcd")


def used_metrics(text: str) -> set[str]:
    return set(METRIC.findall(text))


def test_the_grafana_dashboard_uses_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(exprs) >= 10
    used = set().union(*(used_metrics(e) for e in exprs))
    assert used - metrics.metric_names() == set(), "not exported by paygate.metrics"
    # Every family of the registry is on some panel.
    shown = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in used}
    assert {"paygate_payments", "paygate_queue_length", "paygate_janitor_rescues"} <= shown


def test_the_alert_rules_use_only_exported_metrics():
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    assert len(rules) >= 7
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        assert used_metrics(rule["expr"]) - metrics.metric_names() == set(), rule["alert"]
    names = {rule["alert"] for rule in rules}
    assert {"PaygateWorkerDown", "PaygateHighErrorRate"} <= names


def test_a_renamed_metric_is_caught(monkeypatch):
    """The checks above compare with the registry: a metric renamed there fails them."""
    monkeypatch.setattr(metrics, "STATE_GAUGES", {})
    with pytest.raises(AssertionError):
        test_the_alert_rules_use_only_exported_metrics()


def call(app, path: str, **environ) -> tuple[str, dict, bytes]:
    """One request to a WSGI app, as a server would make it."""
    from wsgiref.util import setup_testing_defaults

    env = {"PATH_INFO": path, **environ}
    setup_testing_defaults(env)
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app(env, start_response))
    return answer["status"], answer["headers"], body


def test_the_worker_is_ready_only_while_it_consumes_and_beats():
    """The worker server's /readyz (what its Kubernetes readiness probe asks) and /metrics'
    token, on the real WSGI app; no source is read for either."""
    from types import SimpleNamespace

    from paygate.config import Settings
    from paygate.jobs.metrics_server import WorkerApp, WorkerState

    state = WorkerState(heartbeat_ttl=10.0)
    settings = Settings.from_env({"PAYGATE_METRICS_TOKEN": "s3cret"})
    app = WorkerApp(SimpleNamespace(settings=settings), state)
    assert call(app, "/livez")[0] == "200 OK"
    status, _, body = call(app, "/readyz")
    assert status.startswith("503") and json.loads(body)["checks"] == {
        "consumer": "failed",
        "heartbeat": "failed",
    }
    assert json.loads(body)["timestamp"].endswith("Z")  # like the web tiers' bodies
    state.beat()
    assert call(app, "/readyz")[0].startswith("503")  # beating, but not consuming yet
    state.consuming = True
    assert call(app, "/readyz")[0] == "200 OK"
    state.last_beat -= 11.0  # the last beat is older than the TTL: Redis away, or a hang
    assert call(app, "/readyz")[0].startswith("503")
    status, headers, body = call(app, "/metrics")
    assert status.startswith("401") and headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(body)["error"]["code"] == "AUTHENTICATION_ERROR"
    assert call(app, "/nothing")[0].startswith("404")


def test_a_fresh_process_exports_every_known_label_set_at_zero_and_no_created_series():
    """A new process's first scrape already has each bounded counter series at 0 (so
    ``increase()`` sees its first janitor rescue, circuit change, delivery or payment), and no
    ``_created`` series (they read like "payments created"). A fresh interpreter: the registry
    of this one has counted other tests' work."""
    import subprocess
    import sys

    from paygate.services import recovery

    code = (
        "from paygate import metrics, wiring\n"
        "wiring.start_counters_at_zero(['upi_test'])\n"
        "print(metrics.exposition().decode())\n"
    )
    text = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    zeros = {
        (s.name, tuple(sorted(s.labels.items())))
        for s in Scrape(text).samples
        if s.name.endswith("_total") and s.value == 0
    }

    def series(name, values, label, **more):
        return {(name, tuple(sorted({label: v, **more}.items()))) for v in values}

    expected = (
        series("paygate_janitor_rescues_total", recovery.KINDS, "kind")
        | series(
            "paygate_webhook_circuit_transitions_total", ("opened", "reopened", "closed"), "change"
        )
        | series(
            "paygate_webhook_deliveries_total",
            ("delivered", "retrying", "failed", "deferred", "abandoned", "skipped"),
            "outcome",
        )
        | series(
            "paygate_payments_total",
            ("created", "success", "failed"),
            "outcome",
            processor="upi_test",
        )
        | series(
            "paygate_refunds_total",
            ("created", "processed", "failed"),
            "outcome",
            processor="upi_test",
        )
    )
    assert expected - zeros == set()
    assert "_created" not in text
    assert not any(name.endswith("_created") for name in metrics.metric_names())


def test_the_alert_rules_say_what_the_operator_trial_asked():
    """The 5xx ratio leaves probes and scrapes out of both sides; the webhook failure rate
    counts final failures only; open circuits count half_open too; a database the scrape
    cannot read pages (the job-age alerts are blind then); the dashboard uses its datasource
    variable only (no import input it does not use)."""
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    }
    errors = rules["PaygateHighErrorRate"]["expr"]
    assert errors.count('route!~"/(livez|readyz|health|metrics)"') == 2
    assert "retrying" not in rules["PaygateWebhookFailureRate"]["expr"]
    assert 'state=~"open|half_open"' in rules["PaygateWebhookCircuitsOpen"]["expr"]
    database = rules["PaygateDatabaseUnreadable"]
    assert 'source="database"' in database["expr"]
    assert database["labels"]["severity"] == "page"
    dashboard = json.loads(DASHBOARD.read_text())
    assert "__inputs" not in dashboard
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {"${datasource}"}
