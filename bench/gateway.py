"""The gateway under test, as an operator runs it: ``paygate api`` (gunicorn) and
``paygate worker`` (Huey consumer) subprocesses, plus the webhook receiver.

"Worker stopped" is SIGSTOP on the worker's process group and SIGCONT resumes it, so one worker
process lives through all runs (the leak check needs that) and a drain starts the instant the
clock does, without start-up time in the figure. Memory is sampled from /proc (RSS of each
process tree: gunicorn master + workers; consumer and any children).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import requests

from paygate.embedded import free_port


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total_kb = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
                        break
        except OSError:
            continue
        stack += _children(current)
    return total_kb / 1024


TICKS = os.sysconf("SC_CLK_TCK")


def tree_pids(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        stack += _children(current)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / TICKS


@dataclass
class Gateway:
    env: dict[str, str]
    log_dir: Path
    api_port: int = 0
    receiver_port: int = 0
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    paused: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    # ``paygate worker``'s arguments: none, the defaults (PAYGATE_WORKER_PROCESSES: auto).
    worker_args: ClassVar[tuple[str, ...]] = ()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def start(self, secret: str) -> None:
        self.receiver_port = free_port()
        self._spawn(
            "receiver",
            [sys.executable, "-m", "bench.receiver", str(self.receiver_port), secret],
        )
        self.api_port = free_port()
        paygate = [sys.executable, "-m", "paygate"]
        self._spawn("api", [*paygate, "api", "--host", "127.0.0.1", "--port", str(self.api_port)])
        self._wait(self.receiver_url + "/_stats", "receiver")
        self._wait(self.url + "/health", "api")
        self._spawn("worker", [*paygate, "worker", *self.worker_args])
        self._wait(self.url + "/health", "worker", worker=True)

    def _wait(self, url: str, name: str, worker: bool = False, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc_name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc_name} exited: {self.tail(proc_name)}")
            try:
                answer = requests.get(url, timeout=2)
                if answer.ok and (not worker or answer.json().get("worker") == "running"):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not come up within {timeout:.0f}s: {self.tail(name)}")

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        try:
            return "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return "(no log)"

    def pause_worker(self) -> None:
        if not self.paused:
            os.killpg(self.procs["worker"].pid, signal.SIGSTOP)
            self.paused = True

    def resume_worker(self) -> None:
        if self.paused:
            os.killpg(self.procs["worker"].pid, signal.SIGCONT)
            self.paused = False

    def cpu(self, postgres_pids: list[int]) -> dict[str, float]:
        """CPU seconds so far of the API, the worker, the receiver and our PostgreSQL backends:
        a cost per operation that stays meaningful when other work shares the machine."""
        used = {
            name: cpu_seconds(tree_pids(self.procs[name].pid))
            for name in ("api", "worker", "receiver")
        }
        used["postgres"] = cpu_seconds(postgres_pids)
        return used

    def rss_mb(self) -> dict[str, float]:
        return {name: tree_rss_mb(self.procs[name].pid) for name in ("api", "worker")}

    def stop(self) -> None:
        self.resume_worker()
        for name, sig in (("api", signal.SIGTERM), ("worker", signal.SIGINT)):
            proc = self.procs.get(name)
            if proc and proc.poll() is None:
                os.killpg(proc.pid, sig)
        for name, proc in self.procs.items():
            if proc.poll() is None and name == "receiver":
                proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


class RssSampler:
    """Peak RSS of the API and the worker while a benchmark runs (sampled every 0.2 s)."""

    def __init__(self, gateway: Gateway, interval: float = 0.2):
        self.gateway = gateway
        self.interval = interval
        self.peak = {"api": 0.0, "worker": 0.0, "total": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.gateway.rss_mb()
            for name, value in rss.items():
                self.peak[name] = max(self.peak[name], value)
            self.peak["total"] = max(self.peak["total"], sum(rss.values()))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
