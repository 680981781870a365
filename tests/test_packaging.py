"""Static checks of what cannot run here (no Docker engine): docker-compose.yml, the
Dockerfile, submission.yml and .env.example must agree with the contract and the CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from paygate.cli import build_parser
from paygate.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "TEST_MODE",
    "TEST_PROCESSING_DELAY",
    "TEST_PAYMENT_SUCCESS",
    "UPI_SUCCESS_RATE",
    "CARD_SUCCESS_RATE",
    "PROCESSING_DELAY_MIN",
    "PROCESSING_DELAY_MAX",
    "WEBHOOK_RETRY_INTERVALS_TEST",
    "TEST_MERCHANT_EMAIL",
    "TEST_API_KEY",
    "TEST_API_SECRET",
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def paygate_subcommands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_compose_has_the_six_services_on_the_contract_ports():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "api", "worker", "dashboard", "checkout"}
    ports = {name: service.get("ports", []) for name, service in services.items()}
    assert ports["api"] == ["8000:8000"]
    assert ports["dashboard"] == ["3000:3000"]
    assert ports["checkout"] == ["3001:3001"]
    assert ports["postgres"] == ["5432:5432"]
    assert ports["redis"] == ["6379:6379"]
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")


def test_compose_database_matches_the_contract_and_the_apps_use_it():
    services = compose()["services"]
    pg = services["postgres"]["environment"]
    assert (pg["POSTGRES_DB"], pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"]) == (
        "payment_gateway",
        "gateway_user",
        "gateway_pass",
    )
    for name in ("api", "worker", "dashboard", "checkout"):
        env = services[name]["environment"]
        assert CONTRACT_ENV <= set(env), f"{name} lacks {CONTRACT_ENV - set(env)}"
        assert env["DATABASE_URL"] == (
            "postgresql://gateway_user:gateway_pass@postgres:5432/payment_gateway"
        )
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        # Every value parses as our settings would parse it (after compose's ${VAR:-default}).
        resolved = {k: re.sub(r"^\$\{[A-Z_]+:-(.*)\}$", r"\1", str(v)) for k, v in env.items()}
        Settings.from_env(resolved)


def test_compose_commands_are_real_paygate_subcommands():
    services = compose()["services"]
    known = paygate_subcommands()
    for name in ("api", "worker", "dashboard", "checkout"):
        command = services[name]["command"]
        argv = command if isinstance(command, list) else shlex.split(command)
        assert argv[0] == "paygate" and argv[1] == name and argv[1] in known
        build_parser().parse_args(argv[1:])  # the flags exist too
    assert services["worker"]["stop_signal"] == "SIGINT"
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name]


def test_dockerfile_copies_what_exists_and_installs_the_cli():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11" in text
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert "pip install ." in text
    assert re.search(r'CMD \["paygate", "api"\]', text)


def test_submission_yml_has_the_five_lists():
    data = yaml.safe_load((ROOT / "submission.yml").read_text())
    assert list(data) == ["setup", "start", "test", "verify", "shutdown"]
    assert all(
        isinstance(v, list) and v and all(isinstance(c, str) for c in v) for v in data.values()
    )
    verify = " ".join(data["verify"])
    for target in ("/health", "/api/v1/test/jobs/status", ":3000", ":3001/checkout.js"):
        assert target in verify


def test_env_example_names_only_settings_we_read():
    names = [
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line
        and not line.startswith("# ")
        or line.startswith("# ")
        and re.match(r"# [A-Z_]+=", line)
    ]
    source = "".join(p.read_text() for p in (ROOT / "paygate").rglob("*.py"))
    source += "".join(p.read_text() for p in (ROOT / "plugins").rglob("*.py"))
    for name in names:
        assert f'"{name}"' in source, f".env.example mentions {name}, which nothing reads"
