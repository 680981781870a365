"""The probe paths of deploy/kubernetes answer as the manifests' comments say, on the real apps,
with PostgreSQL and Redis both unreachable: liveness paths (``/livez``) still answer 200 (an
outage restarts no pod), every web tier's readiness ``/readyz`` answers 503 (the pod takes no
traffic), ``/health`` stays the contract's answer, and the API's ``/metrics`` still answers,
reporting both sources down."""

from __future__ import annotations

import falcon.testing
import pytest

from paygate.api.app import create_app as api_app
from paygate.embedded import free_port
from paygate.web.checkout.app import create_app as checkout_app
from paygate.web.dashboard.app import create_app as dashboard_app
from paygate.wiring import build_context
from tests.fixtures import make_settings
from tests.test_deploy_manifests import DEPLOY, containers, documents

# Real closed ports, not mocks: connecting is refused as when the servers are down. Integration
# tier: the unit tier forbids even trying to connect.
pytestmark = pytest.mark.integration

APPS = {"api": api_app, "dashboard": dashboard_app, "checkout": checkout_app}


def probes(tier: str) -> dict[str, str]:
    (deployment,) = [d for d in documents(DEPLOY / f"{tier}.yaml") if d["kind"] == "Deployment"]
    container = containers(deployment)[0]
    return {
        kind: container[f"{kind}Probe"]["httpGet"]["path"] for kind in ("liveness", "readiness")
    }


@pytest.fixture(scope="module")
def clients():
    settings = make_settings(
        DATABASE_URL=f"postgresql://paygate@127.0.0.1:{free_port()}/paygate",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        PAYGATE_ENV="production",
        PAYGATE_SECRET_KEY="k" * 40,
        TEST_MODE="false",
    )
    built = {}
    for tier, create in APPS.items():
        ctx = build_context(settings, role=f"probe-{tier}")
        built[tier] = (falcon.testing.TestClient(create(ctx)), ctx)
    yield {tier: client for tier, (client, _) in built.items()}
    for _, ctx in built.values():
        ctx.db.close()


@pytest.mark.parametrize("tier", sorted(APPS))
def test_liveness_answers_with_both_databases_down(clients, tier):
    assert clients[tier].simulate_get(probes(tier)["liveness"]).status_code == 200


@pytest.mark.parametrize("tier", sorted(APPS))
def test_readiness_fails_while_postgresql_is_down_and_health_stays_the_contracts(clients, tier):
    """The API, the dashboard and the checkout answer the same /readyz and /health (no session
    needed, no cookie set)."""
    assert probes(tier) == {"liveness": "/livez", "readiness": "/readyz"}
    ready = clients[tier].simulate_get("/readyz")
    assert ready.status_code == 503
    assert ready.json["status"] == "unready"
    assert ready.json["checks"] == {"database": "failed", "redis": "failed"}
    assert clients[tier].simulate_get("/livez").json["status"] == "alive"
    answer = clients[tier].simulate_get("/health")
    assert answer.status_code == 503
    assert answer.json["status"] == "unhealthy"
    assert answer.json["database"] == "disconnected"
    assert "set-cookie" not in {k.lower() for k in ready.headers}


def test_metrics_answer_with_both_sources_down(clients):
    """A scrape never fails for the record or the queue: it says which source it could not
    read (``paygate_metrics_source_up`` 0), and the request counters are still there."""
    from tests.metrics_scrape import Scrape

    answer = clients["api"].simulate_get("/metrics")
    assert answer.status_code == 200
    scraped = Scrape(answer.text)
    assert scraped.value("paygate_metrics_source_up", source="database") == 0
    assert scraped.value("paygate_metrics_source_up", source="redis") == 0
    assert "paygate_jobs_pending" not in scraped.names()
    assert "paygate_http_request_duration_seconds" in scraped.families


def test_every_web_tier_answers_health_like_the_api_when_the_record_is_up(ctx):
    """With the databases up, /health on the dashboard and the checkout is the API's answer:
    200, the same keys, no session cookie (probes carry none)."""
    from paygate.web.checkout.app import create_app as checkout_app
    from paygate.web.dashboard.app import create_app as dashboard_app

    answers = {
        name: falcon.testing.TestClient(factory(ctx)).simulate_get("/health")
        for name, factory in (
            ("api", api_app),
            ("dashboard", dashboard_app),
            ("checkout", checkout_app),
        )
    }
    for name, factory in (
        ("dashboard", dashboard_app),
        ("checkout", checkout_app),
        ("api", api_app),
    ):
        client = falcon.testing.TestClient(factory(ctx))
        ready = client.simulate_get("/readyz")
        assert ready.status_code == 200, name
        assert ready.json["checks"] == {"database": "ok", "redis": "ok"}, name
        assert "set-cookie" not in {k.lower() for k in ready.headers}, name
    for name, answer in answers.items():
        assert answer.status_code == 200, name
        assert answer.json["status"] == "healthy" and answer.json["database"] == "connected"
        assert set(answer.json) == set(answers["api"].json), name
        assert "set-cookie" not in {k.lower() for k in answer.headers}, name
