"""The probe paths of deploy/kubernetes answer as the manifests' comments say, on the real apps,
with PostgreSQL and Redis both unreachable: liveness paths still answer 200 (an outage restarts
no pod), and every web tier's readiness ``/health`` answers 503 (the pod takes no traffic)."""

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
def test_readiness_is_health_and_fails_while_postgresql_is_down(clients, tier):
    """The API, the dashboard and the checkout answer the same /health (no session needed)."""
    assert probes(tier)["readiness"] == "/health"
    answer = clients[tier].simulate_get("/health")
    assert answer.status_code == 503
    assert answer.json["status"] == "unhealthy"
    assert answer.json["database"] == "disconnected"


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
    for name, answer in answers.items():
        assert answer.status_code == 200, name
        assert answer.json["status"] == "healthy" and answer.json["database"] == "connected"
        assert set(answer.json) == set(answers["api"].json), name
        assert "set-cookie" not in {k.lower() for k in answer.headers}, name
