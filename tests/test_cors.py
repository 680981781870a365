"""The API's CORS allow-list: in development the loopback names of a configured origin are
one origin (a checkout opened at http://127.0.0.1:3001 may call the API); production allows
exactly the configured list."""

from __future__ import annotations

import falcon
import falcon.testing
import pytest

from paygate.api.middleware import CORSMiddleware
from paygate.config import Settings

pytestmark = pytest.mark.unit


def test_development_allows_every_loopback_name_of_a_configured_loopback_origin():
    settings = Settings.from_env({"PAYGATE_CORS_ORIGINS": "https://shop.example,http://[::1]:8080"})
    origins = settings.allowed_origins
    # The configured ones first, in order, then the other loopback names of each.
    assert origins[:4] == (
        "http://localhost:3000",
        "http://localhost:3001",
        "https://shop.example",
        "http://[::1]:8080",
    )
    for port in (3000, 3001, 8080):
        for name in ("localhost", "127.0.0.1", "[::1]"):
            assert f"http://{name}:{port}" in origins
    assert len(origins) == len(set(origins)) == 10  # 3 ports x 3 names, and the shop
    # Same scheme and port only: nothing else on the machine is let in.
    assert "https://127.0.0.1:3001" not in origins
    assert "http://127.0.0.1:3002" not in origins
    assert "http://127.0.0.1" not in origins


def test_development_keeps_the_scheme_and_a_default_port_and_leaves_other_hosts_alone():
    settings = Settings.from_env(
        {
            "PAYGATE_DASHBOARD_URL": "https://127.0.0.1",
            "PAYGATE_CHECKOUT_URL": "https://pay.example:3001",
        }
    )
    assert set(settings.allowed_origins) == {
        "https://127.0.0.1",
        "https://localhost",
        "https://[::1]",
        "https://pay.example:3001",
    }


def test_production_allows_exactly_the_configured_origins():
    env = {
        "PAYGATE_DASHBOARD_URL": "http://localhost:3000",
        "PAYGATE_CHECKOUT_URL": "http://127.0.0.1:3001",
        "PAYGATE_CORS_ORIGINS": "https://shop.example",
    }
    production = Settings.from_env({**env, "PAYGATE_ENV": "production"})
    assert production.allowed_origins == (
        "http://localhost:3000",
        "http://127.0.0.1:3001",
        "https://shop.example",
    )


class Ping:
    def on_get(self, req, resp):
        resp.media = {"ok": True}


def client(settings: Settings) -> falcon.testing.TestClient:
    app = falcon.App(middleware=[CORSMiddleware(allow_origins=list(settings.allowed_origins))])
    app.add_route("/ping", Ping())
    return falcon.testing.TestClient(app)


@pytest.mark.parametrize("origin", ["http://127.0.0.1:3001", "http://[::1]:3001"])
def test_the_middleware_answers_a_loopback_alias_in_development(origin):
    api = client(Settings.from_env({}))
    preflight = api.simulate_options(
        "/ping",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert preflight.headers.get("Access-Control-Allow-Origin") == origin
    got = api.simulate_get("/ping", headers={"Origin": origin})
    assert got.headers.get("Access-Control-Allow-Origin") == origin
    assert "Origin" in got.headers.get("Vary", "")


def test_the_middleware_refuses_the_alias_in_production_and_a_stranger_anywhere():
    production = client(Settings.from_env({"PAYGATE_ENV": "production"}))
    got = production.simulate_get("/ping", headers={"Origin": "http://127.0.0.1:3001"})
    assert "Access-Control-Allow-Origin" not in got.headers
    assert (
        production.simulate_get("/ping", headers={"Origin": "http://localhost:3001"}).headers.get(
            "Access-Control-Allow-Origin"
        )
        == "http://localhost:3001"
    )
    development = client(Settings.from_env({}))
    got = development.simulate_get("/ping", headers={"Origin": "http://evil.example:3001"})
    assert "Access-Control-Allow-Origin" not in got.headers
