"""Fixtures used across the suite (loaded by conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import falcon.testing
import pytest
import requests

from paygate.config import TEST_MERCHANT_ID, Settings
from paygate.db import Database, connect
from paygate.db.merchants import insert as insert_merchant
from paygate.db.merchants import seed_test_merchant
from paygate.db.migrate import migrate
from paygate.embedded import Scratch, free_port
from paygate.jobs.queue import Queue, build_queue
from paygate.plugins import load_plugins
from paygate.services import Context, merchants
from paygate.testing.receiver import Receiver
from tests import services as test_services

SERVICES = pytest.StashKey[Scratch]()
TEST_KEY = "key_test_abc123"
TEST_SECRET = "secret_test_xyz789"
AUTH = {"X-Api-Key": TEST_KEY, "X-Api-Secret": TEST_SECRET}
OTHER_MERCHANT_ID = "6f1c2b9e-0d5a-4c55-9a3e-2b7d7e1f4a10"
OTHER_AUTH = {"X-Api-Key": "key_test_other999", "X-Api-Secret": "secret_test_other999"}
TABLES = (
    "processor_callbacks, webhook_attempts, webhook_logs, refunds, payments, orders, "
    "idempotency_keys, events, webhook_endpoints, observer_positions, merchants"
)

# What in-process tests run with unless they say otherwise.
TEST_ENV = {
    "TEST_MODE": "true",
    "TEST_PROCESSING_DELAY": "0",
    "WEBHOOK_RETRY_INTERVALS_TEST": "true",
    "PAYGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
}


def make_settings(**env_overrides: str) -> Settings:
    return Settings.from_env({**os.environ, **TEST_ENV, **env_overrides})


@pytest.fixture(scope="session")
def paygate_services(request) -> Iterator[Scratch | None]:
    """PostgreSQL and Redis for this run, started by the first test that needs them.

    ``DATABASE_URL``/``REDIS_URL`` set: a fresh database on that PostgreSQL (dropped at the
    end) and that Redis; unset: embedded servers, as ``paygate up`` starts them. The URLs go
    into ``os.environ`` (next to this run's queue name, set in conftest.py), so the settings the
    fixtures build and every gateway subprocess they start use them.
    """
    if os.environ.get("PAYGATE_TESTS_CHILD"):  # a pytest run inside a test: the parent's servers
        yield None
        return
    services = test_services.start()
    request.config.stash[SERVICES] = services
    try:
        os.environ["DATABASE_URL"] = services.database_url
        os.environ["REDIS_URL"] = services.redis_url
        yield services
    finally:
        test_services.stop(services)


@pytest.fixture(scope="session")
def database_url(paygate_services) -> str:
    return os.environ["DATABASE_URL"]


@pytest.fixture(scope="session")
def redis_url(paygate_services) -> str:
    return os.environ["REDIS_URL"]


@pytest.fixture(scope="session")
def shared_db(database_url) -> Iterator[Database]:
    with connect(database_url) as conn:
        migrate(conn)
    db = Database(database_url, min_size=1, max_size=20, name="tests").open()
    yield db
    db.close()


def reset_record(database_url: str, settings: Settings) -> None:
    with connect(database_url) as conn:
        conn.execute(f"TRUNCATE {TABLES} CASCADE")
        seed_test_merchant(conn, settings)


_queues: dict[tuple[str | None, str, float], Queue] = {}


def run_queue(settings: Settings | None = None) -> Queue:
    """This run's queue (``PAYGATE_QUEUE`` on ``REDIS_URL``), built once like a process does."""
    settings = settings or make_settings()
    key = (settings.redis_url, settings.queue_name, settings.heartbeat_ttl_seconds)
    if key not in _queues:
        _queues[key] = build_queue(settings)
    return _queues[key]


def flush_redis() -> None:
    """Empty this run's queue and heartbeats (never the whole Redis: others may share it)."""
    run_queue().flush()


@pytest.fixture
def clean(shared_db, database_url) -> None:
    """An empty record with only the seeded test merchant, and an empty queue."""
    reset_record(database_url, make_settings())
    flush_redis()
    merchants.forget_cached()


@pytest.fixture
def make_ctx(shared_db, clean):
    """Build a services context with environment overrides (``TEST_PAYMENT_SUCCESS="false"``)."""

    def build(**env_overrides: str) -> Context:
        settings = make_settings(**env_overrides)
        queue = run_queue(settings)
        ctx = Context(
            settings=settings,
            db=shared_db,
            plugins=load_plugins(settings),
            dispatcher=queue.new_dispatcher(),
        )
        queue.bind(ctx)
        return ctx

    return build


@pytest.fixture
def ctx(make_ctx) -> Context:
    return make_ctx()


@pytest.fixture
def test_merchant(ctx) -> dict:
    return merchants.get(ctx, TEST_MERCHANT_ID)


@pytest.fixture
def other_merchant(ctx) -> dict:
    """A second merchant, for tenancy tests."""
    with ctx.db.connection() as conn:
        insert_other_merchant(conn)
    return merchants.get(ctx, OTHER_MERCHANT_ID)


def insert_other_merchant(conn) -> None:
    """The second merchant (``OTHER_AUTH``), next to the seeded test merchant."""
    insert_merchant(
        conn,
        id=OTHER_MERCHANT_ID,
        name="Other Merchant",
        email="other@example.com",
        api_key=OTHER_AUTH["X-Api-Key"],
        api_secret=OTHER_AUTH["X-Api-Secret"],
        webhook_secret="whsec_other",
    )


@pytest.fixture
def api(ctx) -> falcon.testing.TestClient:
    """The API app in-process (falcon.testing) on the real database and Redis."""
    from paygate.api.app import create_app

    return falcon.testing.TestClient(create_app(ctx), headers={"Content-Type": "application/json"})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver on 127.0.0.1 (the contract kit's), closed after the test."""
    with Receiver() as server:
        yield server


def set_webhook_url(ctx: Context, url: str | None, merchant_id: str = TEST_MERCHANT_ID) -> None:
    with ctx.db.connection() as conn:
        conn.execute("UPDATE merchants SET webhook_url = %s WHERE id = %s", (url, merchant_id))
    merchants.forget_cached()


# -- a real gateway in subprocesses ------------------------------------------------------------


@dataclass
class Gateway:
    """API (gunicorn) and workers (Huey consumers) as real processes on the test servers, run
    by ``python`` (another virtual environment's, say) in ``cwd``."""

    env: dict[str, str]
    api_port: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    tmp: str = ""
    python: str = sys.executable
    cwd: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log_path = os.path.join(self.tmp, f"{name}.log")
        self.logs[name] = log_path
        proc = subprocess.Popen(
            [self.python, "-m", "paygate", *args],
            env=self.env,
            cwd=self.cwd,
            stdout=open(log_path, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_api(self, workers: int = 1, threads: int = 8) -> None:
        self.api_port = self.api_port or free_port()
        self._spawn(
            "api",
            [
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
        )
        self.wait_healthy()

    def start_web(self, app: str, threads: int = 8, port: int = 0) -> str:
        """Start ``dashboard`` or ``checkout`` on ``port`` (a free one by default); return its
        base URL."""
        port = port or free_port()
        self.ports[app] = port
        self._spawn(
            app,
            [
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--threads",
                str(threads),
                "--no-migrate",
            ],
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(url + "/", timeout=2, allow_redirects=False)
                return url
            except requests.RequestException:
                if self.procs[app].poll() is not None:
                    break
                time.sleep(0.1)
        raise AssertionError(f"{app} did not start: {self.tail()}")

    def start_worker(
        self, name: str = "worker", concurrency: int = 4, processes: int = 1
    ) -> subprocess.Popen:
        """A ``paygate worker`` of ``processes`` processes (one by default: the tests that kill
        or signal "the worker" mean one process; tests/test_worker_processes.py runs more)."""
        return self._spawn(
            name, ["worker", "--concurrency", str(concurrency), "--processes", str(processes)]
        )

    def wait_healthy(self, timeout: float = 30.0, worker: bool = False) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = requests.get(self.url + "/health", timeout=2).json()
                if last.get("status") == "healthy" and (not worker or last["worker"] == "running"):
                    return last
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"gateway not healthy: {last}; logs: {self.tail()}")

    def send_signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            except ProcessLookupError:
                pass
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name, signal.SIGINT if name.startswith("worker") else signal.SIGTERM)

    def tail(self, lines: int = 40) -> str:
        out = []
        for name, path in self.logs.items():
            try:
                with open(path, errors="replace") as fh:
                    out.append(f"--- {name}\n" + "".join(fh.readlines()[-lines:]))
            except OSError:
                pass
        return "\n".join(out)

    def api_call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)


@pytest.fixture
def gateway_factory(clean, tmp_path):
    started: list[Gateway] = []

    def build(**env_overrides: str) -> Gateway:
        env = {
            **os.environ,
            **TEST_ENV,
            "PAYGATE_JANITOR_INTERVAL": "0.2",
            "PAYGATE_LOG_LEVEL": "INFO",
            **env_overrides,
        }
        gateway = Gateway(env=env, tmp=str(tmp_path))
        started.append(gateway)
        return gateway

    yield build
    for gateway in started:
        gateway.stop_all()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Poll ``predicate`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


# -- the browser (tests/browser and the e2e tests that drive a page share one Playwright) --

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright, one per session: a second sync Playwright in
    the same thread fails ("Sync API inside the asyncio loop"), so every test takes this one."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        playwright.selectors.set_test_id_attribute("data-test-id")  # the contract's attribute
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
