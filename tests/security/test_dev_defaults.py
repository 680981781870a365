"""Development defaults that are safe to leave on: ``paygate up`` listens on 127.0.0.1 unless
told otherwise (``--host`` or ``PAYGATE_BIND``), and its banner shows the API key but masks the
secret and any password."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest
import requests

from paygate import supervisor
from paygate.cli import build_parser
from paygate.config import Settings
from paygate.embedded import free_port
from tests.fixtures import wait_for

TEST_SECRET = "secret_test_xyz789"


class FinishedChild:
    """A child process that has already exited: ``run_up`` starts, prints and stops at once."""

    returncode = 0
    pid = 0

    def poll(self) -> int:
        return 0

    def wait(self, timeout=None) -> int:
        return 0

    def send_signal(self, sig) -> None:
        pass


@pytest.fixture
def up(monkeypatch, capsys):
    """``run_up`` with its children recorded (not started): returns (argv, env) of each."""
    spawned: list[tuple[list[str], dict[str, str]]] = []

    def spawn(args, env):
        spawned.append((args, dict(env)))
        return FinishedChild()

    monkeypatch.setattr(supervisor, "_spawn", spawn)
    monkeypatch.setattr(supervisor, "prepare_database", lambda settings: None)
    monkeypatch.setattr(supervisor, "port_in_use", lambda port: False)
    monkeypatch.setattr(supervisor, "_wait_listening", lambda children, ports, timeout: None)
    monkeypatch.setattr(supervisor, "_supervise", lambda children, stopping: True)  # no restarts
    monkeypatch.setenv("DATABASE_URL", "postgresql://gateway_user:hunter2pass@db:5432/pg")
    monkeypatch.setenv("REDIS_URL", "redis://:redispass99@redis:6379/0")
    monkeypatch.delenv("PAYGATE_BIND", raising=False)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def run(*argv: str, **env: str) -> tuple[dict[str, str], str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        args = build_parser().parse_args(["up", "--no-worker", *argv])
        try:
            args.func(args, Settings.from_env(dict(os.environ)))
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
        children = {a[0]: e for a, e in spawned}
        assert set(children) == {"api", "dashboard", "checkout"}
        return {
            name: e.get("PAYGATE_BIND") for name, e in children.items()
        }, capsys.readouterr().out

    return run


def test_paygate_up_listens_on_loopback_by_default(up):
    hosts, banner = up()
    assert set(hosts.values()) == {"127.0.0.1"}
    assert "other machines can reach" not in banner


def test_paygate_up_host_flag_and_bind_variable_choose_the_address(up):
    hosts, banner = up("--host", "0.0.0.0")
    assert set(hosts.values()) == {"0.0.0.0"}
    assert "Listening on 0.0.0.0: other machines can reach" in banner


def test_paygate_bind_variable_chooses_the_address_of_paygate_up(up):
    hosts, _ = up(PAYGATE_BIND="192.0.2.7")
    assert set(hosts.values()) == {"192.0.2.7"}


def test_the_server_commands_default_to_loopback_too():
    assert Settings.from_env({}).bind_host == "127.0.0.1"
    assert Settings.from_env({"PAYGATE_BIND": "0.0.0.0"}).bind_host == "0.0.0.0"


def test_the_banner_shows_the_key_and_masks_the_secret_and_passwords(up):
    _, banner = up()
    assert "key_test_abc123" in banner
    assert TEST_SECRET not in banner and "****z789" in banner
    assert "hunter2pass" not in banner and "redispass99" not in banner
    assert "postgresql://gateway_user:****@db:5432/pg" in banner
    assert "redis://:****@redis:6379/0" in banner


def test_the_banner_says_how_the_test_processor_settles(up):
    _, banner = up()
    assert "Processor  test: random: 5000-10000 ms, UPI 90% / card 95% succeed" in banner
    _, banner = up(TEST_MODE="true", TEST_PROCESSING_DELAY="1500", TEST_PAYMENT_SUCCESS="false")
    assert "Processor  test: TEST_MODE: every payment fails after 1500 ms" in banner


def test_the_production_banner_names_no_test_keys(up):
    _, banner = up(PAYGATE_ENV="production")
    assert "key_test_abc123" not in banner and "z789" not in banner


@pytest.mark.parametrize(
    ("secret", "shown"),
    [("secret_test_xyz789", "****z789"), ("short", "****"), ("", "****"), ("a" * 11, "****")],
)
def test_mask_secret_keeps_at_most_the_last_four_characters(secret, shown):
    assert supervisor.mask_secret(secret) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://postgres@127.0.0.1:5432/x", "postgresql://postgres@127.0.0.1:5432/x"),
        ("postgresql://u:p%40ss@h/x", "postgresql://u:****@h/x"),
        ("redis://:pw@h:6379/0", "redis://:****@h:6379/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_redact_url_hides_passwords(url, shown):
    assert supervisor.redact_url(url) == shown


@pytest.mark.e2e
def test_a_real_paygate_up_listens_only_on_loopback(tmp_path):
    """The real thing: every socket the started servers listen on is 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if k != "PAYGATE_BIND"}
    env.update(
        PORT=str(free_port()),
        DASHBOARD_PORT=str(free_port()),
        CHECKOUT_PORT=str(free_port()),
        PAYGATE_STATE_DIR=str(tmp_path),
        PAYGATE_API_WORKERS="1",
        PAYGATE_API_THREADS="2",
    )
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "paygate", "up", "--no-worker"],
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        for name in ("PORT", "DASHBOARD_PORT", "CHECKOUT_PORT"):
            url = f"http://127.0.0.1:{env[name]}/"
            wait_for(lambda url=url: _answers(url), timeout=60, message=log.read_text)
        listening = {
            (conn.laddr.ip, conn.laddr.port)
            for child in psutil.Process(proc.pid).children(recursive=True)
            for conn in child.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        }
        ports = {int(env[n]) for n in ("PORT", "DASHBOARD_PORT", "CHECKOUT_PORT")}
        assert ports <= {port for _, port in listening}, listening
        assert {ip for ip, port in listening if port in ports} == {"127.0.0.1"}, listening
        banner = log.read_text()
        assert "key_test_abc123" in banner and TEST_SECRET not in banner
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1, allow_redirects=False)
        return True
    except requests.RequestException:
        return False


def test_paygate_up_waits_for_its_web_apps_before_saying_running():
    """The banner waits until every web app listens; a child that exits first is named."""
    import socket
    import subprocess
    import sys

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    quitter = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        alive = [("api", sleeper, 0)]
        assert supervisor._wait_listening(alive, {"api": port}, timeout=5) is None
        listener.close()
        assert supervisor._wait_listening(alive, {"api": port}, timeout=0.3) == "api"
        quitter.wait()
        assert supervisor._wait_listening([("api", quitter, 0)], {"api": port}, 5) == "api"
    finally:
        sleeper.kill()
        sleeper.wait()
