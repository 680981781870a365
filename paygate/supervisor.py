"""``paygate up``: embedded servers when needed, then API, dashboard, checkout and a worker.

Children run in their own sessions, so Ctrl-C reaches only us; we then stop them in order
(web servers, worker, then the databases) and wait for each. Every child also gets
``PR_SET_PDEATHSIG``, so even a ``kill -9`` of this process leaves nothing running.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import runfile
from .config import APPS, Settings
from .embedded import EmbeddedError, free_port, port_in_use, postgres_in, valkey_in
from .wiring import prepare_database

log = logging.getLogger("paygate.up")

DEFAULT_PG_PORT = 5432
DEFAULT_REDIS_PORT = 6379
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


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
        preexec_fn=_die_with_parent,
    )


STARTUP_SECONDS = 60.0


def _wait_listening(
    children: list[tuple[str, subprocess.Popen, int]], ports: dict[str, int], timeout: float
) -> str | None:
    """Wait until every web app in ``ports`` listens; the name of one that exited or did not
    listen within ``timeout`` seconds, else None."""
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


def _stop_all(children: list[tuple[str, subprocess.Popen, int]], timeout: float = 15.0) -> None:
    for _, proc, sig in children:
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for name, proc, _ in children:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", name)
            proc.kill()
            proc.wait(5)


def run_up(
    settings: Settings,
    *,
    state_dir: str | None = None,
    with_worker: bool = True,
    host: str | None = None,
) -> int:
    state = Path(state_dir or settings.state_dir).expanduser().resolve()
    state.mkdir(parents=True, exist_ok=True)
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
    servers = []
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children: list[tuple[str, subprocess.Popen, int]] = []
    try:
        if not settings.database_url:
            pg = postgres_in(state, _pick_port(settings.embedded_pg_port, DEFAULT_PG_PORT))
            servers.append(pg.start())
            env["DATABASE_URL"] = pg.url
        if not settings.redis_url:
            kv = valkey_in(state, _pick_port(settings.embedded_redis_port, DEFAULT_REDIS_PORT))
            servers.append(kv.start())
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
            children.append((name, _spawn([name, "--no-migrate"], env), signal.SIGTERM))
            ports[name] = port
        if with_worker:
            children.append(("worker", _spawn(["worker"], env), signal.SIGINT))
        # The banner says "running" only once every web app listens (or names the one that
        # did not start, and everything stops).
        failed = _wait_listening(children, ports, STARTUP_SECONDS)
        if failed:
            log.error("%s did not start (see its output above); stopping everything", failed)
            return 1
        _banner(settings, env, state, [name for name, _, _ in children])
        while not stopping:
            for name, proc, _ in children:
                if proc.poll() is not None:
                    log.error("%s exited with code %s; stopping everything", name, proc.returncode)
                    stopping = True
                    break
            time.sleep(0.2)
        return 0 if all(p.poll() in (None, 0) for _, p, _ in children) else 1
    except EmbeddedError as exc:
        print(f"paygate: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        runfile.remove(state)
        _stop_all(children)
        for server in reversed(servers):
            server.stop()
        if children or servers:
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


def _banner(settings: Settings, env: dict[str, str], state: Path, running: list[str]) -> None:
    host = env["PAYGATE_BIND"]
    shown = "localhost" if host in (*LOOPBACK_HOSTS, "0.0.0.0", "::") else host
    lines = ["", "Paygate is running:"]
    if "api" in running:
        lines.append(f"  API        http://{shown}:{settings.port}   (health: /health)")
    if "dashboard" in running:
        lines.append(f"  Dashboard  http://{shown}:{settings.dashboard_port}/login")
    if "checkout" in running:
        lines.append(f"  Checkout   http://{shown}:{settings.checkout_port}/checkout?order_id=...")
    lines.append(f"  Worker     {'running' if 'worker' in running else 'not started'}")
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
