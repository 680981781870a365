"""Several API processes and several worker "nodes" of one chaos run, as separate processes.

Every process is started in a session (process group) of its own, as on separate machines: an
API is a gunicorn master with its workers, a worker node is ``paygate worker`` with its own
janitor, heartbeat and observer threads. Killing a node is SIGKILL of its whole process group;
all of them share the run's one PostgreSQL database, one Redis and one processor ledger.

Ports come from 22000-22999 (the range this suite's hand-started listeners use).
"""

from __future__ import annotations

import signal
import socket
import time
from dataclasses import dataclass, field

import requests

from tests.chaos.run import ChaosRun

PORTS = range(22000, 23000)


def free_ports(count: int, taken: tuple[int, ...] = ()) -> list[int]:
    """``count`` ports of the range that nothing listens on (or binds) right now."""
    found: list[int] = []
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise AssertionError(f"not {count} free ports in {PORTS}")


@dataclass
class Nodes:
    run: ChaosRun
    api_ports: list[int]
    workers: int
    api_workers: int = 2
    concurrency: int = 6
    events: list[str] = field(default_factory=list)  # what happened when, for the log
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, run: ChaosRun, apis: int, workers: int, **kwargs) -> Nodes:
        nodes = cls(run, free_ports(apis), workers, **kwargs)
        for i in range(apis):
            nodes.start_api(i, wait=False)
        for i in range(workers):
            nodes.start_worker(i)
        for i in range(apis):
            nodes.wait_healthy(i)
        # Every API answers, and /health counts a worker running only once one beats.
        run.gateway.api_port = nodes.api_ports[0]
        run.gateway.wait_healthy(worker=True)
        return nodes

    def log(self, what: str) -> None:
        line = f"{time.monotonic() - self.started:6.1f}s {what}"
        self.events.append(line)
        print(f"[nodes] {line}", flush=True)

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.api_ports[i]}"

    # -- API processes -----------------------------------------------------------------------

    def start_api(self, i: int, wait: bool = True) -> None:
        args = ["api", "--host", "127.0.0.1", "--port", str(self.api_ports[i])]
        args += ["--workers", str(self.api_workers), "--threads", "8"]
        if i or wait:  # only api-0's first start migrates (a no-op: the run has migrated)
            args.append("--no-migrate")
        self.run.gateway._spawn(f"api-{i}", args)
        if wait:
            self.wait_healthy(i)

    def wait_healthy(self, i: int, timeout: float = 30.0) -> float:
        """Seconds until ``api-i`` answers ``/health`` healthy (its readiness probe)."""
        started = time.monotonic()
        deadline = started + timeout
        proc = self.run.gateway.procs[f"api-{i}"]
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = requests.get(self.url(i) + "/health", timeout=2)
                if answer.status_code == 200 and answer.json().get("status") == "healthy":
                    return time.monotonic() - started
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"api-{i} not healthy: {self.run.gateway.tail(10)}")

    def stop_api(self, i: int, sig: int = signal.SIGTERM, timeout: float = 20.0) -> float:
        """Signal ``api-i``'s process group and wait for the master to exit; seconds taken."""
        return self._stop(f"api-{i}", sig, timeout)

    def _stop(self, name: str, sig: int, timeout: float) -> float:
        started = time.monotonic()
        code = self.run.gateway.stop(name, sig, timeout)
        self.log(f"{name} {signal.Signals(sig).name}: exited {code}")
        return time.monotonic() - started

    # -- worker nodes ------------------------------------------------------------------------

    def start_worker(self, i: int) -> None:
        self.run.gateway.start_worker(f"worker-{i}", concurrency=self.concurrency)

    def kill_worker(self, i: int) -> None:
        """SIGKILL the node's whole process group: no goodbye, no cleanup."""
        self.run.gateway.send_signal(f"worker-{i}", signal.SIGKILL)
        self.run.gateway.procs[f"worker-{i}"].wait(10)
        self.log(f"worker-{i} SIGKILL")

    def stop_worker(self, i: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        return self._stop(f"worker-{i}", sig, timeout)

    def worker_alive(self, i: int) -> bool:
        return self.run.gateway.procs[f"worker-{i}"].poll() is None
