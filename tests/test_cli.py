"""The ``paygate`` command: one-command start on the embedded default, clean Ctrl-C, and one
clear line (never a traceback) for the usual operator mistakes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import requests

from paygate.embedded import free_port
from tests.factories import create_order, create_payment
from tests.fixtures import AUTH, wait_for


def paygate(
    *args: str, env: dict | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "paygate", *args],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=timeout,
    )


def embedded_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "PORT": str(free_port()),
            "DASHBOARD_PORT": str(free_port()),
            "CHECKOUT_PORT": str(free_port()),
            "PAYGATE_EMBEDDED_PG_PORT": str(free_port()),
            "PAYGATE_EMBEDDED_REDIS_PORT": str(free_port()),
            "PAYGATE_STATE_DIR": str(tmp_path),
            "TEST_MODE": "true",
            "TEST_PROCESSING_DELAY": "200",
            "PAYGATE_QUEUE": "paygate-up-test",
        }
    )
    return env


def start_up(env: dict, log_path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "paygate", "up"],
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )


def healthy(url: str):
    try:
        body = requests.get(url + "/health", timeout=1).json()
        return body if body["database"] == "connected" and body["worker"] == "running" else None
    except (requests.RequestException, ValueError, KeyError):
        return None


@pytest.mark.e2e
def test_up_runs_on_embedded_servers_and_ctrl_c_leaves_nothing_behind(tmp_path):
    env = embedded_env(tmp_path)
    api = f"http://127.0.0.1:{env['PORT']}"
    up = start_up(env, tmp_path / "up1.log")
    try:
        health = wait_for(
            lambda: healthy(api), timeout=60, message=(tmp_path / "up1.log").read_text
        )
        assert health["status"] == "healthy" and health["redis"] == "connected"
        # The banner comes once every web app listens, which may be just after /health answers.
        banner = wait_for(
            lambda: "Ctrl-C" in (text := (tmp_path / "up1.log").read_text()) and text, timeout=30
        )
        assert f"http://localhost:{env['PORT']}" in banner
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 4  # postgres, valkey, api, worker (and their workers)
        order = create_order(api, 12300)
        payment = create_payment(api, order_id=order["id"])
        assert payment["status"] == "pending"
        wait_for(
            lambda: (
                requests.get(
                    f"{api}/api/v1/payments/{payment['id']}", headers=AUTH, timeout=5
                ).json()["status"]
                == "success"
            ),
            timeout=10,
        )
        # Another terminal, same state directory, no URL copied from the banner: every command
        # finds the databases of the running `paygate up` (paygate.runfile).
        run_file = tmp_path / "run.json"
        assert run_file.stat().st_mode & 0o777 == 0o600  # it holds the database URLs
        routed = paygate("merchants", "set-processor", "test@example.com", "test", env=env)
        assert routed.returncode == 0, routed.stderr
        assert "using the databases of the paygate up running on" in routed.stderr
        shown = paygate("merchants", "show", "test@example.com", env=env)
        assert shown.returncode == 0 and "test" in shown.stdout, shown.stderr
        # A second `paygate up` on the same state directory is refused in one line.
        second = paygate("up", env=env, timeout=30)
        assert second.returncode != 0 and "Traceback" not in second.stderr
        assert "is already running on" in second.stderr.strip().splitlines()[-1]
    finally:
        up.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
        up.wait(60)
    assert up.returncode == 0, (tmp_path / "up1.log").read_text()[-2000:]
    assert not run_file.exists()  # gone with the gateway: later commands do not find it
    time.sleep(0.5)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left behind: {[c.cmdline() for c in alive]}"

    # A second `paygate up` finds the same data again.
    up = start_up(env, tmp_path / "up2.log")
    try:
        wait_for(lambda: healthy(api), timeout=60, message=(tmp_path / "up2.log").read_text)
        again = requests.get(f"{api}/api/v1/orders/{order['id']}", headers=AUTH, timeout=5)
        assert again.status_code == 200 and again.json()["amount"] == 12300
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)


@pytest.mark.usefixtures("paygate_services")  # the API connects to the database first
def test_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = paygate("api", "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"paygate: port {port} is already in use"
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_clear_line():
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    result = paygate("migrate", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("paygate: cannot connect to the database")


def test_missing_database_url_explains_what_to_do():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = paygate("migrate", env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "paygate up" in result.stderr


def test_plugins_lists_the_built_in_processor_and_notifier():
    result = paygate("plugins")
    assert result.returncode == 0, result.stderr
    assert "processor test" in result.stdout
    assert "notifier webhook" in result.stdout
    assert "paygate_register_processors" in result.stdout


def test_a_setting_that_does_not_parse_is_one_clear_line_naming_it():
    result = paygate("migrate", env={**os.environ, "PAYGATE_REFUND_WINDOW_DAYS": "thirty"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "paygate: PAYGATE_REFUND_WINDOW_DAYS must be a whole number of days, got 'thirty'"
    )


def test_a_closed_pipe_ends_a_command_quietly():
    """``paygate plugins | head -1``: the reader went away; no traceback, SIGPIPE's status."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        result = subprocess.run(
            [sys.executable, "-m", "paygate", "plugins"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


def test_migrate_says_how_many_migrations_it_applied(database_url):
    """On an empty database ``paygate migrate`` says what it applied; run again, that there
    was nothing to apply (it used to say "up to date" either way)."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    from paygate.db import connect

    name = f"paygate_migrate_{secrets.token_hex(4)}"
    with connect(database_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(urlsplit(database_url)._replace(path="/" + name)),
    }
    try:
        first = paygate("migrate", env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("applied ") and " migrations; " in first.stdout
        again = paygate("migrate", env=env)
        assert again.stdout.strip() == "database is up to date (no migration to apply)"
    finally:
        with connect(database_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
