"""``paygate up`` as a supervisor (issue 18, Done-when 1) and graceful SIGTERM of a worker.

Real processes throughout: ``paygate up`` as a subprocess on this run's PostgreSQL (a database
of its own) and Redis (a queue of its own), children killed with SIGKILL as an operator or the
kernel would; plus the back-off and crash-loop bookkeeping as a pure unit."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
import requests

from paygate.db import connect
from paygate.embedded import free_port
from paygate.supervisor import Restarts, describe_exit
from paygate.testing.receiver import Answer
from tests.factories import create_payment
from tests.fixtures import AUTH, TEST_ENV, wait_for
from tests.test_cli import embedded_env

FINAL = ("success", "failed")


# -- the bookkeeping ---------------------------------------------------------------------------


@pytest.mark.unit
def test_back_off_doubles_to_its_cap_and_resets_after_a_healthy_run():
    r = Restarts(loop_count=0, loop_seconds=60)  # no crash loop: only the back-off
    delays = [r.crashed(now=i * 100.0, ran_for=1.0) for i in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert r.crashed(now=900.0, ran_for=30.0) == 0.5  # it had run 30 s: healthy, start over
    assert r.crashed(now=1000.0, ran_for=2.0) == 1.0
    delays = [r.crashed(now=2000.0 + i, ran_for=0.1) for i in range(2000)]  # restarted forever
    assert delays[:4] == [2.0, 4.0, 8.0, 10.0] and set(delays[3:]) == {10.0}


@pytest.mark.unit
def test_a_crash_loop_is_count_exits_within_the_window():
    r = Restarts(loop_count=5, loop_seconds=60)
    assert [r.crashed(now=t, ran_for=0.1) for t in (0.0, 1.0, 3.0, 7.0)] == [0.5, 1.0, 2.0, 4.0]
    assert r.crashed(now=59.0, ran_for=0.1) is None  # the fifth within 60 s
    spaced = Restarts(loop_count=3, loop_seconds=10)
    # Three exits, but never three within 10 s: restarted every time.
    assert all(spaced.crashed(now=t, ran_for=1.0) is not None for t in (0, 6, 12, 18, 24, 30))


@pytest.mark.unit
def test_an_exit_is_described_by_its_code_or_signal():
    assert describe_exit(-9) == "signal SIGKILL"
    assert describe_exit(-15) == "signal SIGTERM"
    assert describe_exit(3) == "exit code 3"


# -- paygate up, for real ------------------------------------------------------------------------


@pytest.fixture
def up_env(database_url, redis_url, tmp_path):
    """The environment of a ``paygate up`` on a fresh database of this run's PostgreSQL, a queue
    of its own on this run's Redis, free ports and a state directory of its own."""
    name = f"paygate_up_{secrets.token_hex(4)}"
    with connect(database_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        **TEST_ENV,
        "DATABASE_URL": urlunsplit(urlsplit(database_url)._replace(path="/" + name)),
        "REDIS_URL": redis_url,
        "PORT": str(free_port()),
        "DASHBOARD_PORT": str(free_port()),
        "CHECKOUT_PORT": str(free_port()),
        "PAYGATE_STATE_DIR": str(tmp_path),
        "PAYGATE_QUEUE": f"paygate-up-{secrets.token_hex(3)}",
        "TEST_PROCESSING_DELAY": "300",
        "PAYGATE_JANITOR_INTERVAL": "0.2",
        # A payment whose worker was killed mid-task is dispatched again once its lease ends.
        "PAYGATE_JOB_LEASE_SECONDS": "11",
        "PAYGATE_STOP_TIMEOUT": "5",
        "PAYGATE_LOG_LEVEL": "INFO",
    }
    yield env
    with connect(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Up:
    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        self.api = f"http://127.0.0.1:{env['PORT']}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paygate", "up"],
            env=env,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def child(self, name: str) -> psutil.Process:
        """The direct child running ``paygate <name>``."""
        for proc in psutil.Process(self.proc.pid).children():
            cmd = proc.cmdline()
            if cmd[-2:] == [name, "--no-migrate"] or cmd[-1:] == [name]:
                return proc
        raise AssertionError(f"no {name} child; log:\n{self.text()[-3000:]}")

    def healthy(self) -> dict | None:
        try:
            body = requests.get(self.api + "/health", timeout=1).json()
        except (requests.RequestException, ValueError):
            return None
        return body if body.get("status") == "healthy" and body.get("worker") == "running" else None

    def wait_running(self) -> None:
        wait_for(lambda: "Ctrl-C" in self.text(), timeout=60, message=self.text)
        wait_for(self.healthy, timeout=30, message=self.text)

    def restarted(self, name: str, old_pid: int, timeout: float = 15.0) -> int:
        """Wait for the line saying ``name`` was restarted; its new pid (not ``old_pid``)."""

        def new_pid():
            pids = re.findall(rf"{name} restarted \(pid (\d+)\)", self.text())
            return pids and int(pids[-1]) != old_pid and int(pids[-1])

        return wait_for(new_pid, timeout=timeout, interval=0.1, message=self.text)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def assert_none_left(children: list[psutil.Process]) -> None:
    """Every process ``up`` had started is gone (half a second after ``up`` returned)."""
    time.sleep(0.5)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left behind: {[c.cmdline() for c in alive]}"


def status(api: str, payment_id: str) -> str:
    return requests.get(f"{api}/api/v1/payments/{payment_id}", headers=AUTH, timeout=5).json()[
        "status"
    ]


@pytest.mark.e2e
@pytest.mark.slow
def test_up_brings_back_a_killed_worker_and_api_and_every_payment_settles(up_env, tmp_path):
    up = Up(up_env, tmp_path / "up.log")
    try:
        up.wait_running()
        children = psutil.Process(up.proc.pid).children(recursive=True)
        before = [create_payment(up.api)["id"] for _ in range(10)]

        worker = up.child("worker")
        worker.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        new_worker = up.restarted("worker", worker.pid)
        assert "worker exited (signal SIGKILL)" in up.text()
        assert up.child("worker").pid == new_worker
        during = [create_payment(up.api)["id"] for _ in range(5)]
        # Back: the new worker consumes (its own start line) and /health reports a worker.
        wait_for(lambda: f"[{new_worker}] worker started" in up.text(), timeout=10, interval=0.1)
        wait_for(up.healthy, timeout=10, message=up.text)
        worker_back = time.monotonic() - killed
        assert worker_back < 10

        api = up.child("api")
        api.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        up.restarted("api", api.pid)
        assert "api exited (signal SIGKILL)" in up.text()
        wait_for(up.healthy, timeout=10, interval=0.1, message=up.text)
        api_back = time.monotonic() - killed
        assert api_back < 10  # back within seconds
        # (docs/operations.md quotes these: run with -s to see them)
        print(f"\nworker consuming again {worker_back:.1f} s after SIGKILL")
        print(f"API healthy again {api_back:.1f} s after SIGKILL")
        after = [create_payment(up.api)["id"] for _ in range(10)]

        # Every payment settles, those in the killed worker's hands included (their lease ends
        # and the janitor dispatches them again).
        try:
            for payment_id in before + during + after:
                wait_for(lambda p=payment_id: status(up.api, p) in FINAL, timeout=30, interval=0.2)
        except requests.ConnectionError as exc:  # say what `up` did meanwhile
            raise AssertionError(f"{exc}\n{up.text()[-4000:]}") from exc
        assert "stopping everything" not in up.text()  # nothing above stopped `up`
    finally:
        code = up.stop(signal.SIGTERM)
    assert code == 0, up.text()[-3000:]
    assert_none_left(children)


@pytest.mark.e2e
def test_a_crash_loop_stops_up_with_one_error_line(up_env, tmp_path):
    up = Up({**up_env, "PAYGATE_CRASH_LOOP": "3/60"}, tmp_path / "up.log")
    try:
        up.wait_running()
        children = psutil.Process(up.proc.pid).children(recursive=True)
        pid = up.child("worker").pid
        for _ in range(2):  # two exits: restarted each time (after 0.5 s, then 1 s)
            os.kill(pid, signal.SIGKILL)
            pid = up.restarted("worker", pid)
        os.kill(pid, signal.SIGKILL)  # the third within 60 s
        code = up.proc.wait(30)
    finally:
        up.stop()
    text = up.text()
    assert code == 1, text[-3000:]
    errors = [line for line in text.splitlines() if "crash loop" in line]
    assert len(errors) == 1 and "ERROR" in errors[0], text[-3000:]
    assert "worker exited 3 times within 60 s" in errors[0]
    assert "PAYGATE_CRASH_LOOP=3/60" in errors[0] and "stopping everything" in errors[0]
    assert text.count("worker restarted") == 2
    assert_none_left(children)


def embedded_up_env(state: Path, queue: str) -> dict[str, str]:
    """``paygate up`` on its own embedded servers (free ports, ``state``), test mode, INFO logs."""
    return {
        **embedded_env(state),
        **TEST_ENV,
        "PAYGATE_QUEUE": queue,
        "PAYGATE_LOG_LEVEL": "INFO",
    }


@pytest.mark.e2e
@pytest.mark.slow
def test_up_restarts_its_embedded_databases_on_their_data(tmp_path):
    env = embedded_up_env(tmp_path, "paygate-up-embedded")
    up = Up(env, tmp_path / "up.log")
    try:
        up.wait_running()
        children = psutil.Process(up.proc.pid).children(recursive=True)
        first = create_payment(up.api)["id"]
        wait_for(lambda: status(up.api, first) in FINAL, timeout=15, interval=0.2)
        for name, binary in (("valkey", "valkey-server"), ("postgresql", "postgres")):
            (server,) = [
                c for c in psutil.Process(up.proc.pid).children() if binary in c.cmdline()[0]
            ]
            server.send_signal(signal.SIGKILL)
            up.restarted(name, server.pid, timeout=30)
            assert f"{name} exited (signal SIGKILL)" in up.text()
            wait_for(up.healthy, timeout=30, interval=0.2, message=up.text)
        # The same data: the payment made before is there, and a new one settles.
        assert status(up.api, first) in FINAL
        second = create_payment(up.api)["id"]
        wait_for(lambda: status(up.api, second) in FINAL, timeout=30, interval=0.2)
        assert "stopping everything" not in up.text()
    finally:
        code = up.stop(signal.SIGTERM)
    assert code == 0, up.text()[-3000:]
    assert_none_left(children)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_kill_9_of_up_stops_its_embedded_databases_too_and_the_next_up_starts(tmp_path):
    """Every child, the embedded PostgreSQL and Valkey included, dies with ``up`` (their
    death signal), so a ``kill -9`` of ``up`` leaves no server holding the ports or the data,
    and the next ``up`` on the same state directory starts. The state directory is 0700."""
    env = embedded_up_env(tmp_path / "state", "paygate-up-kill9")
    up = Up(env, tmp_path / "up.log")
    try:
        up.wait_running()
        assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
        family = psutil.Process(up.proc.pid).children(recursive=True)
        assert any("postgres" in " ".join(c.cmdline()) for c in family), up.text()
        assert any("valkey" in " ".join(c.cmdline()) for c in family), up.text()
        up.proc.kill()
        up.proc.wait(5)

        def gone():
            return all(not c.is_running() or c.status() == psutil.STATUS_ZOMBIE for c in family)

        wait_for(gone, timeout=20, interval=0.2, message=lambda: "left behind")
    finally:
        up.stop()
    again = Up(env, tmp_path / "up-again.log")
    try:
        again.wait_running()  # the same ports and data directory: free again
        payment = create_payment(again.api)["id"]
        wait_for(lambda: status(again.api, payment) in FINAL, timeout=30, interval=0.2)
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.text()[-3000:]


# -- graceful SIGTERM of a worker ------------------------------------------------------------------


@pytest.mark.e2e
def test_sigterm_lets_the_running_task_finish_then_the_worker_exits(gateway_factory, receiver):
    # A webhook delivery holds its worker thread while the merchant's endpoint answers: the
    # endpoint takes 3 s, and the worker gets SIGTERM while it waits for the answer.
    receiver.answer("/slow", Answer(200, delay=3.0))
    gateway = gateway_factory(PAYGATE_STOP_TIMEOUT="20", PAYGATE_ALLOW_PRIVATE_WEBHOOKS="true")
    gateway.start_api()
    configured = gateway.api_call(
        "POST", "/api/v1/webhooks/config", json={"webhook_url": receiver.url("/slow")}
    )
    assert configured.status_code == 200, configured.text
    worker = gateway.start_worker()
    gateway.wait_healthy(worker=True)
    payment = create_payment(gateway.url)
    receiver.wait_for("/slow", 1, timeout=15)  # the delivery is running
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)  # what systemd, Kubernetes and `paygate up` send
    assert worker.wait(20) == 0, gateway.tail()
    took = time.monotonic() - signalled
    assert took > 1.5, gateway.tail()  # it waited for the endpoint's answer, not a quick exit
    # Every delivery the endpoint got finished in this worker (no other worker runs) and is
    # recorded as delivered: none was cut off mid-request.
    logs = gateway.api_call("GET", "/api/v1/webhooks").json()["data"]
    delivered = [log for log in logs if log["status"] == "success"]
    assert len(delivered) == len(receiver.to("/slow")) >= 1, (logs, gateway.tail())
    assert status(gateway.url, payment["id"]) == "success"
    text = Path(gateway.logs["worker"]).read_text()
    assert "SIGTERM: no new tasks; waiting up to 20 s for running ones" in text
    assert "every running task finished" in text


@pytest.mark.e2e
@pytest.mark.slow
def test_a_task_past_the_stop_timeout_or_a_second_signal_is_cut_off_and_not_lost(
    gateway_factory, receiver
):
    hang = {"on": True}
    receiver.answer_with("/slow", lambda r: Answer(200, delay=4.0 if hang["on"] else 0.0))
    gateway = gateway_factory(
        PAYGATE_ALLOW_PRIVATE_WEBHOOKS="true",
        PAYGATE_JOB_LEASE_SECONDS="3.5",  # a cut-off delivery is dispatched again soon
        PAYGATE_WEBHOOK_TIMEOUT="3",  # (below the lease; the endpoint hangs 4 s)
    )
    gateway.start_api()
    configured = gateway.api_call(
        "POST", "/api/v1/webhooks/config", json={"webhook_url": receiver.url("/slow")}
    )
    assert configured.status_code == 200, configured.text

    # PAYGATE_STOP_TIMEOUT=1: the 4 s delivery is not waited for.
    gateway.env["PAYGATE_STOP_TIMEOUT"] = "1"
    first = gateway.start_worker("worker-a")
    gateway.wait_healthy(worker=True)
    create_payment(gateway.url)
    receiver.wait_for("/slow", 1, timeout=15)
    signalled = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(10) == 0, gateway.tail()
    assert 0.8 < time.monotonic() - signalled < 3.5, gateway.tail()
    text = Path(gateway.logs["worker-a"]).read_text()
    # The delivery runs on the webhook consumer's threads; a payment task may be running too.
    cut_off = r"\d (task\(s\)|webhook delivery\(ies\)) still running after 1 s; stopping anyway"
    assert re.search(cut_off, text), text

    # A second SIGTERM stops at once, whatever the timeout.
    gateway.env["PAYGATE_STOP_TIMEOUT"] = "20"
    seen = len(receiver.to("/slow"))
    second = gateway.start_worker("worker-b")
    receiver.wait_for("/slow", seen + 1, timeout=20)  # the cut-off delivery, dispatched again
    second.send_signal(signal.SIGTERM)
    # Past the main consumer's own drain (it has nothing running; its scheduler joins within
    # 1 s): the second signal lands while the deliveries drain, and still stops at once.
    time.sleep(1.5)
    signalled = time.monotonic()
    second.send_signal(signal.SIGTERM)
    assert second.wait(10) == 0, gateway.tail()
    assert time.monotonic() - signalled < 2.0, gateway.tail()
    assert "second stop signal: stopping now" in Path(gateway.logs["worker-b"]).read_text()

    # Nothing was lost: a worker that is left alone delivers every event.
    hang["on"] = False
    gateway.start_worker("worker-c")

    def all_delivered():
        logs = gateway.api_call("GET", "/api/v1/webhooks").json()["data"]
        return len(logs) >= 2 and all(log["status"] == "success" for log in logs)

    wait_for(all_delivered, timeout=30, interval=0.2, message=gateway.tail)


@pytest.mark.e2e
def test_with_json_logs_every_stderr_line_of_up_is_json_and_the_banner_is_on_stdout(
    up_env, tmp_path
):
    """``PAYGATE_LOG_FORMAT=json``: what ``paygate up`` and its children write on stderr, its
    last line ``stopped`` included, is one JSON object per line; the human banner is stdout's
    (docs/operations.md, "Logs")."""
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "paygate", "up"],
        env={**up_env, "PAYGATE_LOG_FORMAT": "json"},
        stdout=open(out, "wb"),
        stderr=open(err, "wb"),
    )
    try:
        wait_for(lambda: "Ctrl-C" in out.read_text(), timeout=60, message=err.read_text)
        create_payment(f"http://127.0.0.1:{up_env['PORT']}")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, err.read_text()[-3000:]
    records = [json.loads(line) for line in err.read_text().splitlines() if line.strip()]
    assert records and records[-1]["message"] == "stopped"
    assert "paygate: stopped" not in out.read_text()
