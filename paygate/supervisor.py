"""``paygate up``: embedded servers when needed, then API, dashboard, checkout and a worker,
kept running.

Children run in their own sessions, so Ctrl-C reaches only us. A child that exits on its own
(crash, ``kill -9``, out of memory) is started again after a back-off (``Restarts``: 0.5 s
doubling to 10 s, back to 0.5 s once a child has run 30 s), with one log line for the exit and
one for the restart; the embedded PostgreSQL and Valkey too, on the same data directory and
port, before the others are looked at. ``up`` stops everything only on SIGINT (Ctrl-C) or
SIGTERM to itself, or on a crash loop: one child exiting ``PAYGATE_CRASH_LOOP`` times (5 in
60 s by default) ends ``up`` with one ERROR line and exit code 1. Stopping sends SIGTERM to
the web servers and the worker (each finishes what it is doing within
``PAYGATE_STOP_TIMEOUT``), then stops the databases, and waits for each. Every child also gets
``PR_SET_PDEATHSIG``, so even a ``kill -9`` of this process leaves nothing running.

``paygate worker``'s helper processes (``Helpers``, at the end) are kept running the same way.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import metrics, runfile
from .config import APPS, AUTO_WORKER_PROCESSES_MAX, Settings
from .embedded import (
    EmbeddedError,
    die_with_parent,
    free_port,
    port_in_use,
    postgres_in,
    valkey_in,
)
from .jobs.consumer import GROUP_SIGNALS, PARENT_STOP, PARENT_STOP_NOW
from .wiring import prepare_database

log = logging.getLogger("paygate.up")

DEFAULT_PG_PORT = 5432
DEFAULT_REDIS_PORT = 6379
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _pick_port(configured: int | None, preferred: int) -> int:
    """The configured port, else ``preferred`` when it is free, else any free port."""
    if configured:
        return configured
    return preferred if not port_in_use(preferred) else free_port()


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        # -P: the working directory is not put on sys.path, so a folder named ``paygate``
        # there (the folder a clone was made in, say) cannot shadow the installed package.
        [sys.executable, "-P", "-m", "paygate", *args],
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent(),
    )


STARTUP_SECONDS = 60.0
# How long a restart waits for the port of the child it replaces to be free (a killed
# gunicorn master's workers notice and exit within a second or two); past that it starts
# anyway, fails, and counts as a crash.
PORT_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.2


@dataclass
class Restarts:
    """Back-off and crash-loop bookkeeping for one child. ``crashed`` records an exit and says
    how long to wait before the restart, or None when the child has exited ``loop_count`` times
    within ``loop_seconds`` (a crash loop: stop everything)."""

    loop_count: int
    loop_seconds: float
    first_delay: float = 0.5
    max_delay: float = 10.0
    healthy_after: float = 30.0
    exits: deque[float] = field(default_factory=deque)
    streak: int = 0  # exits since the child last ran ``healthy_after`` seconds

    def crashed(self, now: float, ran_for: float) -> float | None:
        if ran_for >= self.healthy_after:
            self.streak = 0
        self.exits.append(now)
        while self.exits and self.exits[0] <= now - self.loop_seconds:
            self.exits.popleft()
        if 0 < self.loop_count <= len(self.exits):  # a COUNT of 0: never a crash loop
            return None
        delay = min(self.max_delay, self.first_delay * 2**self.streak)
        self.streak = min(self.streak + 1, 32)  # (2**streak stays a small float)
        return delay


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``signal SIGKILL`` (Popen's negative return codes)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


@dataclass
class Child:
    """One supervised process: ``start`` runs it (blocking until it is up, for the databases)
    and returns its process; ``stop`` stops it for good."""

    name: str
    start: Callable[[], subprocess.Popen]
    stop_signal: int | None  # None: ``stop`` is not a signal (the embedded servers)
    restarts: Restarts
    port: int | None = None
    stop: Callable[[], None] | None = None
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    due: float | None = None  # a restart is pending: when
    port_wait_until: float = 0.0

    def run(self) -> None:
        self.proc = self.start()
        self.started_at = time.monotonic()
        self.due = None


def _wait_listening(
    children: list[tuple[str, subprocess.Popen, int | None]], ports: dict[str, int], timeout: float
) -> str | None:
    """Wait until every web app in ``ports`` listens; the name of one of ``children`` (name,
    process, stop signal) that exited or did not listen within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    waiting = dict(ports)
    while waiting:
        for name, proc, _ in children:
            if proc.poll() is not None:
                return name
        waiting = {name: port for name, port in waiting.items() if not port_in_use(port)}
        if waiting and time.monotonic() > deadline:
            return ", ".join(waiting)
        if waiting:
            time.sleep(0.1)
    return None


def _stop_all(children: list[Child], timeout: float) -> None:
    """SIGTERM (their graceful stop) to every process child, wait up to ``timeout`` seconds
    for all of them, kill what is left."""
    procs = [c for c in children if c.stop_signal is not None and c.proc is not None]
    for child in procs:
        if child.proc.poll() is None:
            try:
                child.proc.send_signal(child.stop_signal)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for child in procs:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", child.name)
            child.proc.kill()
            child.proc.wait(5)


def _supervise(children: list[Child], stopping: Callable[[], bool]) -> bool:
    """Restart children that exit until ``stopping()``; False on a crash loop."""
    while not stopping():
        for child in children:  # the databases first: the others need them
            if stopping():
                break
            now = time.monotonic()
            if child.due is not None:
                if now < child.due:
                    continue
                if child.port and port_in_use(child.port) and now < child.port_wait_until:
                    continue  # the one it replaces (or its workers) still holds the port
                try:
                    child.run()
                except EmbeddedError as exc:  # it did not come up: an exit like any other
                    log.warning("%s did not start again: %s", child.name, exc)
                    child.proc, child.started_at = None, now
                    if not _crashed(child, "did not start", time.monotonic()):
                        return False
                    continue
                log.warning("%s restarted (pid %d)", child.name, child.proc.pid)
                continue
            code = child.proc.poll() if child.proc is not None else None
            if code is None:
                continue
            if not _crashed(child, describe_exit(code), now):
                return False
        time.sleep(POLL_SECONDS)
    return True


def _crashed(child: Child, how: str, now: float) -> bool:
    """Book an exit of ``child``; schedule its restart (True) or report a crash loop (False)."""
    ran = now - child.started_at
    delay = child.restarts.crashed(now, ran)
    if delay is None:
        r = child.restarts
        log.error(
            "%s exited %d times within %.0f s (%s after %.1f s the last time): crash loop "
            "(PAYGATE_CRASH_LOOP=%d/%.0f); stopping everything",
            child.name,
            r.loop_count,
            r.loop_seconds,
            how,
            ran,
            r.loop_count,
            r.loop_seconds,
        )
        return False
    log.warning("%s exited (%s) after %.1f s; restarting it in %.1f s", child.name, how, ran, delay)
    child.due = now + delay
    child.port_wait_until = child.due + PORT_WAIT_SECONDS
    return True


def _server_child(name: str, server, restarts: Restarts) -> Child:
    def start() -> subprocess.Popen:
        server.start()
        return server.proc

    return Child(name, start, None, restarts, port=server.port, stop=server.stop)


def run_up(
    settings: Settings,
    *,
    state_dir: str | None = None,
    with_worker: bool = True,
    host: str | None = None,
) -> int:
    state = Path(state_dir or settings.state_dir).expanduser().resolve()
    state.mkdir(parents=True, exist_ok=True)
    # The databases' files, their logs and credentials live here: ours alone.
    state.chmod(0o700)
    other = runfile.running(state)
    if other is not None:
        raise SystemExit(
            f"paygate: a paygate up (pid {other['pid']}) is already running on {state}; stop it "
            "first, or use another PAYGATE_STATE_DIR"
        )
    env = dict(os.environ)  # the children's environment: they read their settings from it
    if not settings.is_production:
        env.setdefault("PAYGATE_ALLOW_PRIVATE_WEBHOOKS", "true")  # local receivers, local dev
    env["PAYGATE_BIND"] = host or settings.bind_host  # --host, else PAYGATE_BIND, else loopback
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    loop_count, loop_seconds = settings.crash_loop

    def restarts() -> Restarts:
        return Restarts(loop_count, loop_seconds)

    servers: list[Child] = []  # the embedded databases
    children: list[Child] = []  # web apps and the worker
    try:
        if not settings.database_url:
            pg = postgres_in(
                state, _pick_port(settings.embedded_pg_port, DEFAULT_PG_PORT), die_with_parent=True
            )
            servers.append(_server_child("postgresql", pg, restarts()))
            servers[-1].run()
            env["DATABASE_URL"] = pg.url
        if not settings.redis_url:
            kv = valkey_in(
                state,
                _pick_port(settings.embedded_redis_port, DEFAULT_REDIS_PORT),
                die_with_parent=True,
            )
            servers.append(_server_child("valkey", kv, restarts()))
            servers[-1].run()
            env["REDIS_URL"] = kv.url
        settings = Settings.from_env(env)
        prepare_database(settings)
        # From here every `paygate` command run with this state directory finds our databases.
        runfile.write(state, env)
        ports: dict[str, int] = {}
        for name, (factory, port_field) in APPS.items():
            port = getattr(settings, port_field)
            if importlib.util.find_spec(factory.partition(":")[0]) is None:
                continue
            if port_in_use(port):
                raise SystemExit(f"paygate: port {port} is already in use ({name})")
            args = [name, "--no-migrate"]
            children.append(
                Child(name, lambda a=args: _spawn(a, env), signal.SIGTERM, restarts(), port=port)
            )
            children[-1].run()
            ports[name] = port
        if with_worker:
            children.append(
                Child("worker", lambda: _spawn(["worker"], env), signal.SIGTERM, restarts())
            )
            children[-1].run()
        # The banner says "running" only once every web app listens (or names the one that
        # did not start, and everything stops).
        started = [(c.name, c.proc, c.stop_signal) for c in children]
        failed = _wait_listening(started, ports, STARTUP_SECONDS)
        if failed:
            log.error("%s did not start (see its output above); stopping everything", failed)
            return 1
        _banner(settings, env, state, [c.name for c in children])
        for child in servers + children:
            log.info("%s running (pid %d)", child.name, child.proc.pid)
        if not _supervise(servers + children, lambda: stopping):
            return 1
        return 0
    except EmbeddedError as exc:
        if settings.log_format == "json":  # one JSON object per line on stderr, like the rest
            log.error("%s", exc)
        else:
            print(f"paygate: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        runfile.remove(state)
        _stop_all(children, settings.stop_timeout_seconds + 5)
        for server in reversed(servers):
            if server.proc is not None:
                server.stop()
        if children or servers:
            if settings.log_format == "json":
                log.info("stopped")
            else:
                print("paygate: stopped", file=sys.stderr)


def mask_secret(secret: str) -> str:
    """``****`` and the last 4 characters (enough to tell two secrets apart); short secrets are
    masked whole."""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``****`` (logs and terminals are not secret)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "****"
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:****@" if parts.username else ":****@"
    return urlunsplit(parts._replace(netloc=user + host))


def _processing(settings: Settings) -> str:
    """How the built-in test processor settles: what TEST_MODE and its companions chose."""
    if settings.test_mode:
        outcome = "succeeds" if settings.test_payment_success else "fails"
        return (
            f"TEST_MODE: every payment {outcome} after {settings.test_processing_delay_ms} ms "
            "(magic values aside: docs/api.md)"
        )
    return (
        f"random: {settings.processing_delay_min_ms}-{settings.processing_delay_max_ms} ms, "
        f"UPI {settings.upi_success_rate:.0%} / card {settings.card_success_rate:.0%} succeed "
        "(TEST_MODE=true for fixed outcomes)"
    )


def _banner(settings: Settings, env: dict[str, str], state: Path, running: list[str]) -> None:
    host = env["PAYGATE_BIND"]
    shown = "localhost" if host in (*LOOPBACK_HOSTS, "0.0.0.0", "::") else host
    lines = ["", "Paygate is running:"]
    if "api" in running:
        lines.append(
            f"  API        http://{shown}:{settings.port}   (health: /health, metrics: /metrics)"
        )
    if "dashboard" in running:
        lines.append(f"  Dashboard  http://{shown}:{settings.dashboard_port}/login")
    if "checkout" in running:
        lines.append(f"  Checkout   http://{shown}:{settings.checkout_port}/checkout?order_id=...")
    worker = "running" if "worker" in running else "not started"
    if "worker" in running and settings.worker_metrics_port:
        worker += f"   (metrics: http://{shown}:{settings.worker_metrics_port}/metrics)"
    lines.append(f"  Worker     {worker}")
    if not settings.is_production:
        lines.append(f"  Processor  test: {_processing(settings)}")
    lines.append(f"  PostgreSQL {redact_url(env['DATABASE_URL'])}")
    lines.append(f"  Redis      {redact_url(env['REDIS_URL'])}")
    lines.append(f"  State      {state}")
    if not settings.is_production:  # production seeds no test merchant
        lines.append(
            f"  Test keys  X-Api-Key: {settings.test_api_key}  "
            f"X-Api-Secret: {mask_secret(settings.test_api_secret)} (in full on the dashboard)"
        )
    if host not in LOOPBACK_HOSTS:
        lines.append(
            f"  Listening on {host}: other machines can reach this development gateway and its "
            "known test credentials. Use --host 127.0.0.1 unless you mean it."
        )
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


# -- paygate worker's helper processes ----------------------------------------------------------
#
# ``paygate worker``'s helper processes: one interpreter lock per core.
#
# A worker process's threads share one interpreter lock. When the worker is CPU-bound (a backlog,
# fast processors and endpoints) they queue for it and every hand-over costs CPU: two processes
# drain about 1.7 times as fast as one on two cores, at less CPU per payment
# (docs/performance.md, "Fifth step"). ``paygate worker`` therefore runs
# ``PAYGATE_WORKER_PROCESSES`` processes (``auto``: one per CPU it may use, at most
# ``AUTO_WORKER_PROCESSES_MAX``): itself and helpers it starts. A helper is a worker (task and
# webhook threads, pool, heartbeat) without a janitor or observers (the parent's serve the
# host, and it takes its helpers with it when it dies): what starting ``paygate worker``
# several times gives, which is safe because every job is a row with a lease.
#
# What the parent adds:
#
# - Restarts: a helper that exits on its own (crash, ``kill -9``, out of memory) is started again
#   after a back-off (0.5 s doubling to 10 s, as ``paygate up`` does); one exiting
#   ``PAYGATE_CRASH_LOOP`` times stops the whole worker with exit code 1, for its process manager
#   to see.
# - Signals: helpers ignore SIGINT and SIGHUP (a terminal sends them to the whole process group:
#   the parent passes the stop on once). The parent's first stop signal sends each helper SIGUSR1
#   (stop gracefully: no new task, ``PAYGATE_STOP_TIMEOUT`` for the running ones), a second one
#   SIGUSR2 (stop now). SIGTERM to a helper itself stops it gracefully; the parent then starts it
#   again. A parent killed with ``-9`` takes its helpers with it (``PR_SET_PDEATHSIG``: SIGUSR1,
#   a graceful stop). SIGSTOP and SIGCONT to the process group pause and resume them all.
# - Metrics: every process counts in Prometheus's multiprocess mode, in one directory; the
#   parent's ``/metrics`` adds them up, helpers serve no port. The parent's ``/readyz`` also asks
#   that every helper is running.

worker_log = logging.getLogger("paygate.worker")
# Past the stop timeout, how long the parent still waits for a helper before killing it.
KILL_AFTER_SECONDS = 5.0


def _helper_preexec() -> None:
    """In a helper before it runs: its parent's graceful stop when the parent dies (the kernel
    may send it more than once: once per subreaper it is handed on to, and a repeated graceful
    stop changes nothing), and a terminal's signals to the group ignored from the start (Python
    keeps an ignored SIGINT ignored)."""
    die_with_parent(PARENT_STOP)()
    for signum in GROUP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity, and a cgroup v2 quota (a container's CPU
    limit) when one is set, rounded up."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def process_count(settings: Settings) -> int:
    """How many processes ``paygate worker`` runs (itself included)."""
    if settings.worker_processes is not None:
        return settings.worker_processes
    return min(usable_cpus(), AUTO_WORKER_PROCESSES_MAX)


class Helpers:
    """The helper processes of one ``paygate worker`` and the thread that keeps them running.
    A crash loop (one exiting too often) stops the worker: SIGTERM to this process, which
    then exits 1 (``crash_looped``)."""

    def __init__(self, settings: Settings, count: int, concurrency: int | None = None):
        args = [sys.executable, "-P", "-m", "paygate", "worker", "--helper"]
        if concurrency:
            args += ["--concurrency", str(concurrency)]
        # Helpers serve no port and count into the parent's metrics directory (the environment
        # names it: ``metrics.use_multiprocess_directory``); their priority is the parent's
        # already (inherited), not lowered again.
        env = {**os.environ, "PAYGATE_WORKER_METRICS_PORT": "0", "PAYGATE_WORKER_NICE": "0"}

        def start() -> subprocess.Popen:
            return subprocess.Popen(args, env=env, preexec_fn=_helper_preexec)

        # ``paygate up``'s children: ``due`` is a pending restart's time.
        self._helpers = [
            Child(f"worker helper {i}", start, PARENT_STOP, Restarts(*settings.crash_loop))
            for i in range(1, count + 1)
        ]
        self.crash_looped = False
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="paygate-helpers", daemon=True)

    def __len__(self) -> int:
        return len(self._helpers)

    def start(self) -> None:
        # Started from the thread that watches them, which lives as long as they should: the
        # kernel ties PR_SET_PDEATHSIG to the thread that started the child.
        self._thread.start()

    def _processes(self) -> list[subprocess.Popen]:
        """The helpers' processes, each started at least once (running or not)."""
        with self._lock:
            return [h.proc for h in self._helpers if h.proc is not None]

    def running(self) -> bool:
        """Whether every helper is running (``/readyz``)."""
        processes = self._processes()
        return len(processes) == len(self._helpers) and all(p.poll() is None for p in processes)

    def pids(self) -> list[int]:
        return [p.pid for p in self._processes()]

    def _run(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            for helper in self._helpers:
                helper.run()
        worker_log.info("worker helpers started: pid(s) %s", ", ".join(map(str, self.pids())))
        while not self._stopping.wait(POLL_SECONDS):
            with self._lock:
                if not self._stopping.is_set() and not all(map(self._look_after, self._helpers)):
                    break
        # Stay alive until the helpers are gone: their PR_SET_PDEATHSIG is tied to this thread.
        for process in self._processes():
            process.wait()

    def _look_after(self, helper: Child) -> bool:
        """Restart ``helper`` when it has exited and its back-off has passed; False on a crash
        loop (the worker stops)."""
        now, process, restarts = time.monotonic(), helper.proc, helper.restarts
        if helper.due is None:
            code = process.poll() if process is not None else None
            if code is None:
                return True
            metrics.process_exited(process.pid)
            delay = restarts.crashed(now, now - helper.started_at)
            if delay is None:
                worker_log.error(
                    "%s (pid %d) exited %d times within %g s, the last time with %s: stopping "
                    "the worker",
                    helper.name,
                    process.pid,
                    len(restarts.exits),
                    restarts.loop_seconds,
                    describe_exit(code),
                )
                self.crash_looped = True
                self._stopping.set()
                os.kill(os.getpid(), signal.SIGTERM)  # the worker's own graceful stop
                return False
            worker_log.warning(
                "%s (pid %d) exited (%s) after %.1f s; starting it again in %.1f s",
                helper.name,
                process.pid,
                describe_exit(code),
                now - helper.started_at,
                delay,
            )
            helper.due = now + delay
        if now >= helper.due:
            helper.run()
            worker_log.info("%s started again: pid %d", helper.name, helper.proc.pid)
        return True

    def signal_stop(self, now: bool = False) -> None:
        """Tell every helper to stop, gracefully or at once (the worker's first stop signal, or
        its second), and start none again."""
        self._stopping.set()
        for process in self._processes():
            if process.poll() is None:
                try:
                    process.send_signal(PARENT_STOP_NOW if now else PARENT_STOP)
                except ProcessLookupError:
                    pass

    def wait(self, timeout: float) -> None:
        """Wait for the helpers told to stop: ``timeout`` seconds, then ``KILL_AFTER_SECONDS``
        more before one still running is killed."""
        processes = self._processes()
        deadline = time.monotonic() + timeout + KILL_AFTER_SECONDS
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker_log.warning("worker helper pid %d did not stop in time: killed", process.pid)
                process.kill()
                process.wait()
            metrics.process_exited(process.pid)
        if processes:
            worker_log.info("worker helpers stopped: %d process(es)", len(processes))
