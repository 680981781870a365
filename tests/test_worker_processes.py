"""``paygate worker --processes N`` (PAYGATE_WORKER_PROCESSES): the worker and the helper
processes it starts, restarts and stops (paygate/supervisor.py, ``Helpers``).

Real processes on this run's PostgreSQL and Redis, signals as a terminal, an operator or the
kernel send them; the helpers' counts read from the files they write for the parent's /metrics.
"""

from __future__ import annotations

import glob
import os
import re
import signal
import time

import psutil
import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from paygate.config import AUTO_WORKER_PROCESSES_MAX, Settings
from paygate.embedded import free_port
from paygate.supervisor import process_count, usable_cpus
from tests.factories import create_payment
from tests.fixtures import wait_for

# -- the setting ---------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("raw, count", [("auto", None), ("AUTO", None), ("1", 1), ("3", 3)])
def test_the_processes_setting_is_auto_or_a_count(raw, count):
    assert Settings.from_env({"PAYGATE_WORKER_PROCESSES": raw}).worker_processes == count


@pytest.mark.unit
@pytest.mark.parametrize("raw", ["0", "-1", "two"])
def test_a_processes_setting_that_is_neither_is_refused(raw):
    with pytest.raises(ValueError, match="PAYGATE_WORKER_PROCESSES"):
        Settings.from_env({"PAYGATE_WORKER_PROCESSES": raw})


@pytest.mark.unit
def test_auto_is_one_process_per_usable_cpu_and_at_most_the_cap():
    assert Settings.from_env({}).worker_processes is None  # the default is auto
    cpus = usable_cpus()
    assert 1 <= cpus <= (os.cpu_count() or 1)
    assert process_count(Settings.from_env({})) == min(cpus, AUTO_WORKER_PROCESSES_MAX)
    assert process_count(Settings.from_env({"PAYGATE_WORKER_PROCESSES": "3"})) == 3


@pytest.mark.unit
def test_a_killed_servers_metrics_directory_is_removed_by_the_next_one(tmp_path):
    """A server killed with -9 cannot remove its multiprocess directory; the next one removes
    every directory whose maker is gone, and nothing else."""
    import subprocess
    import sys

    from paygate import metrics

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"paygate-worker-metrics-{gone.pid}-abc"
    alive = tmp_path / f"paygate-api-metrics-{os.getpid()}-def"
    other = tmp_path / "paygate-api-metrics-xyz"  # not a name Paygate makes
    for directory in (dead, alive, other):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"")
    assert metrics.remove_abandoned_directories(str(tmp_path)) == [str(dead)]
    assert not dead.exists() and alive.exists() and other.exists()


# -- for real ------------------------------------------------------------------------------------


def helpers_of(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "--helper" in child.cmdline():
                found.append(child)
        except psutil.Error:  # it has just exited
            pass
    return found


def counted_payments(directory: str, pid: int) -> float:
    """The successful payments process ``pid`` counted (its own metrics file)."""
    files = glob.glob(os.path.join(directory, f"counter_{pid}.db"))
    total = 0.0
    for family in MultiProcessCollector.merge(files, accumulate=True):
        for sample in family.samples:
            if sample.name == "paygate_payments_total" and sample.labels["outcome"] == "success":
                total += sample.value
    return total


def scraped_payments(port: int) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("paygate_payments_total{") and 'outcome="success"' in line
    )


def ready(port: int) -> dict | None:
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except requests.RequestException:
        return None
    return answer.json() if answer.status_code == 200 else None


def settled(url: str, ids: list[str]) -> bool:
    from tests.test_supervisor import status

    return all(status(url, pid) == "success" for pid in ids)


@pytest.fixture
def two_processes(gateway_factory):
    """An API and a worker of two processes (the worker and one helper) with its own metrics
    port; returns (gateway, worker process, metrics port)."""
    port = free_port()
    gateway = gateway_factory(PAYGATE_WORKER_METRICS_PORT=str(port), PAYGATE_STOP_TIMEOUT="10")
    gateway.start_api()
    worker = gateway.start_worker(processes=2)
    gateway.wait_healthy(worker=True)
    body = wait_for(lambda: ready(port), timeout=30, message=gateway.tail)
    assert body["checks"] == {"consumer": "ok", "heartbeat": "ok", "helpers": "ok"}
    wait_for(lambda: len(helpers_of(worker.pid)) == 1, timeout=10, message=gateway.tail)
    return gateway, worker, port


@pytest.mark.e2e
def test_a_helper_takes_its_share_and_the_workers_metrics_add_both_up(two_processes):
    gateway, worker, port = two_processes
    (helper,) = helpers_of(worker.pid)
    directory = helper.environ()["PROMETHEUS_MULTIPROC_DIR"]
    assert directory and os.path.isdir(directory)
    # The worker itself paused (not its helper): the helper settles what the worker's idle
    # threads did not already ask Redis for (one payment job each, 4 threads).
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        ids = [create_payment(gateway.url)["id"] for _ in range(24)]
        wait_for(lambda: counted_payments(directory, helper.pid) >= 24 - 4, timeout=30)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    wait_for(lambda: settled(gateway.url, ids), timeout=30, message=gateway.tail)
    by_helper = counted_payments(directory, helper.pid)
    by_worker = counted_payments(directory, worker.pid)
    assert by_helper + by_worker == 24 and by_helper >= 20, (by_helper, by_worker)
    # One scrape of the worker's port counts both processes' payments.
    assert wait_for(lambda: scraped_payments(port) == 24, timeout=5)


@pytest.mark.e2e
def test_a_killed_helper_is_started_again_and_ctrl_c_stops_both_gracefully(two_processes):
    gateway, worker, port = two_processes
    (first,) = helpers_of(worker.pid)
    first.kill()  # kill -9: a crash, an out-of-memory kill
    replaced = wait_for(
        lambda: [h for h in helpers_of(worker.pid) if h.pid != first.pid],
        timeout=10,
        message=gateway.tail,
    )
    wait_for(lambda: ready(port), timeout=30, message=gateway.tail)
    ids = [create_payment(gateway.url)["id"] for _ in range(6)]
    wait_for(lambda: settled(gateway.url, ids), timeout=30, message=gateway.tail)

    # Ctrl-C in a terminal: SIGINT to the whole process group. The helper ignores it and stops
    # on its parent's word, once: gracefully, not "at once" as a second signal would.
    signalled = time.monotonic()
    gateway.send_signal("worker", signal.SIGINT)
    assert worker.wait(20) == 0, gateway.tail()
    assert time.monotonic() - signalled < 15
    wait_for(lambda: not replaced[0].is_running() or replaced[0].status() == "zombie", timeout=5)
    log = open(gateway.logs["worker"]).read()
    assert re.search(r"exited \(signal SIGKILL\) after \d+\.\d s; starting it again in 0\.5 s", log)
    assert f"[{replaced[0].pid}] SIGUSR1: no new tasks" in log
    assert f"[{worker.pid}] SIGINT: no new tasks" in log
    assert "second stop signal" not in log
    assert log.count("worker stopped: every running task finished") == 2
    assert "worker helpers stopped: 1 process(es)" in log


@pytest.mark.e2e
def test_a_helpers_crash_loop_stops_the_worker_and_a_killed_worker_takes_its_helpers(
    gateway_factory,
):
    port = free_port()
    gateway = gateway_factory(
        PAYGATE_WORKER_METRICS_PORT=str(port),
        PAYGATE_CRASH_LOOP="2/60",
        PAYGATE_STOP_TIMEOUT="5",
    )
    gateway.start_api()
    worker = gateway.start_worker(processes=2)
    gateway.wait_healthy(worker=True)
    for _ in range(2):  # the second exit within 60 s is a crash loop
        (helper,) = wait_for(lambda: helpers_of(worker.pid), timeout=15, message=gateway.tail)
        helper.kill()
        helper.wait(5)
    assert worker.wait(20) == 1, gateway.tail()
    log = open(gateway.logs["worker"]).read()
    assert "exited 2 times within 60 s, the last time with signal SIGKILL: stopping" in log

    # kill -9 of the worker itself: the kernel tells its helper (its parent's graceful stop).
    worker = gateway.start_worker("worker-b", processes=2)
    wait_for(lambda: ready(port), timeout=30, message=gateway.tail)  # the helper beats
    (helper,) = helpers_of(worker.pid)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(5)
    helper.wait(15)
    log = open(gateway.logs["worker-b"]).read()
    assert f"[{helper.pid}] SIGUSR1: no new tasks" in log
    assert f"[{helper.pid}] worker stopped: every running task finished" in log
