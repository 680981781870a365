"""Production mode is safe by construction (CONTRACT.md section 9): no seeded test merchant,
no ``/api/v1/test/*``, no start without a real ``PAYGATE_SECRET_KEY``, HSTS and ``__Host-``
cookies, a checkout only the configured merchants may frame. Development keeps the contract."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import falcon.testing
import pytest
import requests

from paygate.api.app import create_app as create_api
from paygate.config import TEST_MERCHANT_ID, Settings
from paygate.db import connect
from paygate.embedded import free_port, scratch
from paygate.services import auth, merchants
from paygate.web.checkout.app import create_app as create_checkout
from paygate.web.dashboard.app import create_app as create_dashboard
from paygate.wiring import prepare_database
from tests.dashboard_client import DashboardClient
from tests.fixtures import AUTH, wait_for

SECRET_KEY = "k" * 32
PRODUCTION = {"PAYGATE_ENV": "production", "PAYGATE_SECRET_KEY": SECRET_KEY}
HSTS = "max-age=31536000; includeSubDomains"
COMMANDS = [
    ["up"],
    ["api"],
    ["dashboard"],
    ["checkout"],
    ["worker"],
    ["migrate"],
    ["merchants", "show", "test@example.com"],
]


def paygate(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "paygate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture
def fresh_database(database_url, redis_url):
    """A database no test fixture has seeded: what a fresh production deployment starts on."""
    made = scratch("paygate_prod", database_url, redis_url)
    yield made.database_url
    made.stop()


def merchant_emails(database_url: str) -> list[str]:
    with connect(database_url) as conn:
        return [row["email"] for row in conn.execute("SELECT email FROM merchants").fetchall()]


# -- start-up -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("key", ["", "short-but-not-32-bytes"], ids=["missing", "short"])
def test_production_refuses_to_start_without_a_32_byte_secret_key(command, key):
    env = {**os.environ, "PAYGATE_ENV": "production", "PAYGATE_SECRET_KEY": key}
    env["PORT"] = env["DASHBOARD_PORT"] = env["CHECKOUT_PORT"] = str(free_port())
    result = paygate(*command, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    state = "is not set" if not key else f"is only {len(key)} bytes"
    assert last.startswith(f"paygate: PAYGATE_SECRET_KEY {state}: production mode"), last
    assert "at least 32 bytes" in last


def test_the_secret_key_is_counted_in_bytes_and_development_needs_none():
    Settings.from_env({}).check_startup()  # development: a key kept in the database will do
    Settings.from_env({**PRODUCTION}).check_startup()
    with pytest.raises(ValueError, match="is only 30 bytes"):
        Settings.from_env({**PRODUCTION, "PAYGATE_SECRET_KEY": "é" * 15}).check_startup()


def test_a_misspelt_environment_is_refused_not_run_as_development():
    result = paygate("migrate", env={**os.environ, "PAYGATE_ENV": "prod"})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "paygate: PAYGATE_ENV must be one of development, production, got 'prod'"
    )
    assert Settings.from_env({"PAYGATE_ENV": "Production"}).is_production


# -- the seed and the test endpoints ------------------------------------------------------------


def test_production_seeds_no_test_merchant_and_development_still_does(fresh_database, caplog):
    production = Settings.from_env({"DATABASE_URL": fresh_database, **PRODUCTION})
    prepare_database(production)
    assert merchant_emails(fresh_database) == []
    prepare_database(Settings.from_env({"DATABASE_URL": fresh_database}))
    assert merchant_emails(fresh_database) == ["test@example.com"]
    # A database seeded in development, then run in production: the operator is told.
    assert "still active" not in caplog.text
    prepare_database(production)
    assert "test merchant test@example.com" in caplog.text and "still active" in caplog.text


@pytest.mark.parametrize("path", ["/api/v1/test/merchant", "/api/v1/test/jobs/status"])
def test_test_endpoints_answer_404_in_production_and_200_in_development(make_ctx, path):
    production = falcon.testing.TestClient(create_api(make_ctx(**PRODUCTION)))
    result = production.simulate_get(path)
    assert result.status_code == 404
    error = result.json["error"]
    assert (error["code"], error["description"]) == (
        "NOT_FOUND_ERROR",
        "The requested URL was not found",
    )
    development = falcon.testing.TestClient(create_api(make_ctx()))
    assert development.simulate_get(path).status_code == 200


# -- HSTS, cookies, frame-ancestors -------------------------------------------------------------


def test_hsts_on_every_api_dashboard_and_checkout_response_in_production_only(make_ctx):
    for env, expected in ((PRODUCTION, HSTS), ({}, None)):
        ctx = make_ctx(**env)
        api = falcon.testing.TestClient(create_api(ctx))
        dashboard = falcon.testing.TestClient(create_dashboard(ctx))
        checkout = falcon.testing.TestClient(create_checkout(ctx))
        answers = [
            api.simulate_get("/health"),
            api.simulate_get("/api/v1/orders"),  # 401
            api.simulate_get("/nowhere"),  # 404
            dashboard.simulate_get("/login"),
            dashboard.simulate_get("/dashboard"),  # redirect to /login
            dashboard.simulate_get("/static/nothing.css"),
            checkout.simulate_get("/checkout.js"),
            checkout.simulate_get("/checkout?order_id=order_nothere00000000"),
        ]
        for answer in answers:
            assert answer.headers.get("strict-transport-security") == expected, answer


def signed_in(ctx) -> tuple[DashboardClient, falcon.testing.Result]:
    merchant = merchants.get(ctx, TEST_MERCHANT_ID)
    auth.set_password(ctx, merchant, "", "a long production password", "a long production password")
    client = DashboardClient(create_dashboard(ctx))
    client.get("/login")
    result = client.post(
        "/login", {"email": "test@example.com", "password": "a long production password"}
    )
    assert result.status_code == 303, result.text
    return client, result


def test_production_cookies_are_secure_host_prefixed_and_the_session_works(make_ctx):
    client, result = signed_in(make_ctx(**PRODUCTION))
    names = {"__Host-pg_session", "__Host-pg_csrf"}
    assert names <= set(result.cookies)
    for name in names:
        cookie = result.cookies[name]
        assert cookie.secure and cookie.http_only and cookie.path == "/"
        assert cookie.domain is None
    assert not {"pg_session", "pg_csrf"} & set(client.cookies)
    # The session and its CSRF tokens work: a page, a form post, its flash message, sign-out.
    assert client.get("/dashboard").status_code == 200
    client.get("/dashboard/webhooks")
    saved = client.post(
        "/dashboard/webhooks", {"action": "save", "webhook_url": "https://shop.example.com/h"}
    )
    assert saved.status_code == 303, saved.text
    flash = saved.cookies["__Host-pg_flash"]
    assert flash.secure and flash.path == "/" and flash.domain is None
    assert "shop.example.com" in client.get(saved.headers["location"]).text
    assert "__Host-pg_flash" not in client.cookies  # shown once, then cleared
    client.post("/logout", {})
    assert "__Host-pg_session" not in client.cookies
    assert client.get("/dashboard").status_code == 303


def test_development_keeps_its_cookie_names_and_plain_http(make_ctx):
    client, result = signed_in(make_ctx())
    assert {"pg_session", "pg_csrf"} <= set(result.cookies)
    assert not result.cookies["pg_session"].secure
    assert client.get("/dashboard").status_code == 200


def frame_ancestors_of(ctx) -> str:
    answer = falcon.testing.TestClient(create_checkout(ctx)).simulate_get("/checkout.js")
    policy = answer.headers["content-security-policy"]
    return next(p for p in policy.split("; ") if p.startswith("frame-ancestors"))


def test_checkout_frame_ancestors_are_self_plus_the_merchants_in_production(make_ctx):
    assert frame_ancestors_of(make_ctx()) == "frame-ancestors 'self' * file:"
    assert frame_ancestors_of(make_ctx(**PRODUCTION)) == "frame-ancestors 'self'"
    shops = make_ctx(**PRODUCTION, PAYGATE_FRAME_ANCESTORS="https://shop.example.com")
    assert frame_ancestors_of(shops) == "frame-ancestors 'self' https://shop.example.com"
    for wildcard in ("*", "https:", "file:"):
        settings = Settings.from_env({**PRODUCTION, "PAYGATE_FRAME_ANCESTORS": wildcard})
        with pytest.raises(ValueError, match="would let any site frame the checkout"):
            settings.check_startup()


# -- the whole thing, as an operator starts it --------------------------------------------------


@pytest.mark.e2e
def test_paygate_up_in_production_serves_no_test_merchant(fresh_database, redis_url, tmp_path):
    env = {
        **os.environ,
        **PRODUCTION,
        "DATABASE_URL": fresh_database,
        "REDIS_URL": redis_url,
        "PAYGATE_QUEUE": f"paygate-prod-{os.getpid()}",
        "PAYGATE_BIND": "127.0.0.1",
        "PORT": str(free_port()),
        "DASHBOARD_PORT": str(free_port()),
        "CHECKOUT_PORT": str(free_port()),
        "PAYGATE_STATE_DIR": str(tmp_path),
    }
    api = f"http://127.0.0.1:{env['PORT']}"
    log = tmp_path / "up.log"
    up = subprocess.Popen(
        [sys.executable, "-m", "paygate", "up"],
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )
    try:

        def healthy():
            try:
                return requests.get(api + "/health", timeout=1).json()["worker"] == "running"
            except (requests.RequestException, ValueError, KeyError):
                return False

        wait_for(healthy, timeout=60, message=log.read_text)
        test_merchant = requests.get(api + "/api/v1/test/merchant", timeout=5)
        assert test_merchant.status_code == 404
        assert test_merchant.json()["error"]["code"] == "NOT_FOUND_ERROR"
        orders = requests.get(api + "/api/v1/orders", headers=AUTH, timeout=5)
        assert orders.status_code == 401
        assert orders.json()["error"]["code"] == "AUTHENTICATION_ERROR"
        assert orders.headers["strict-transport-security"] == HSTS
        assert merchant_emails(fresh_database) == []
        assert "secret_test_xyz789" not in log.read_text()  # no test keys in the banner
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)

    # Without the key the same command refuses at once and says why.
    refused = paygate("up", env={**env, "PAYGATE_SECRET_KEY": ""})
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "PAYGATE_SECRET_KEY is not set" in refused.stderr


def test_production_start_up_warns_about_a_simulated_bank_private_webhooks_and_http_urls(
    clean, database_url, caplog
):
    """What production mode allows but an operator most likely did not mean is said at every
    start: merchants on the simulated test processor, private webhook targets, http URLs."""
    from paygate.wiring import prepare_database
    from tests.fixtures import make_settings

    settings = make_settings(
        PAYGATE_ENV="production",
        PAYGATE_SECRET_KEY="k" * 40,
        PAYGATE_FRAME_ANCESTORS="https://shop.example.com",
        PAYGATE_ALLOW_PRIVATE_WEBHOOKS="true",
        DATABASE_URL=database_url,
    )
    with caplog.at_level("WARNING", logger="paygate"):
        prepare_database(settings)
    said = " | ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "route payments to the simulated test processor" in said
    assert "PAYGATE_ALLOW_PRIVATE_WEBHOOKS is on" in said
    assert "public URLs are not https (http://localhost:8000" in said

    caplog.clear()
    quiet = make_settings(
        PAYGATE_ENV="production",
        PAYGATE_SECRET_KEY="k" * 40,
        PAYGATE_FRAME_ANCESTORS="https://shop.example.com",
        PAYGATE_ALLOW_PRIVATE_WEBHOOKS="false",
        PAYGATE_API_URL="https://api.pay.example.com",
        PAYGATE_DASHBOARD_URL="https://dash.pay.example.com",
        PAYGATE_CHECKOUT_URL="https://checkout.pay.example.com",
        DATABASE_URL=database_url,
    )
    with caplog.at_level("WARNING", logger="paygate"):
        prepare_database(quiet)
    said = " | ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "PAYGATE_ALLOW_PRIVATE_WEBHOOKS" not in said and "not https" not in said
