"""PAYGATE_WORKER_NICE: the worker process, every thread it starts later, and its PostgreSQL
backends on this machine run at a lower CPU priority than the API (docs/performance.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from paygate.db import Database, lower_backend_priority


@pytest.mark.unit
def test_the_worker_and_the_threads_it_starts_later_run_at_the_configured_nice():
    script = (
        "import os, threading\n"
        "from paygate.jobs.worker import lower_priority\n"
        "lower_priority(7)\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append("
        "os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))\n"
        "t.start(); t.join()\n"
        "print(os.getpriority(os.PRIO_PROCESS, 0), seen[0])\n"
    )
    before = os.getpriority(os.PRIO_PROCESS, 0)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(min(before + 7, 19))] * 2
    out = subprocess.run(
        [sys.executable, "-c", script.replace("lower_priority(7)", "lower_priority(0)")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == [str(before)] * 2


@pytest.mark.unit
def test_a_worker_leading_its_session_lowers_its_session_group_too():
    if not os.path.exists("/proc/self/autogroup"):
        pytest.skip("this kernel has no automatic session groups")
    script = (
        "from paygate.jobs.worker import lower_priority\n"
        "lower_priority(7)\n"
        "print((open('/proc/self/autogroup').read().split() or ['default'])[-1])\n"
    )
    led = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,  # as `paygate up` and service managers start it
    )
    assert led.stdout.split() == ["7"]
    # Not a session leader (run from a shell): the shell's session group is left alone. A
    # process still in the boot session's group reads an empty file (a CI runner's may).
    with open("/proc/self/autogroup") as group:
        mine = (group.read().split() or ["default"])[-1]
    inside = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert inside.stdout.split() == [mine]


def test_the_worker_pool_lowers_its_own_backends_and_no_other(database_url):
    if not database_url.startswith("postgresql://") or "@/" in database_url:
        pytest.skip("needs a TCP database URL")
    worker = Database(database_url, min_size=1, max_size=2, name="t-worker", backend_nice=6)
    api = Database(database_url, min_size=1, max_size=2, name="t-api")
    try:
        with worker.connection() as conn, api.connection() as other:
            assert psutil.Process(conn.info.backend_pid).nice() == 6
            assert psutil.Process(other.info.backend_pid).nice() == 0
            # The API's connection is not the worker's: asked with it, the function proves the
            # backend is that connection's and lowers that one only.
            assert lower_backend_priority(other, 3)
            assert psutil.Process(other.info.backend_pid).nice() == 3
            assert psutil.Process(conn.info.backend_pid).nice() == 6
    finally:
        worker.close()
        api.close()
