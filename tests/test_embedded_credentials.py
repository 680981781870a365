"""The embedded PostgreSQL and Valkey accept no connection without the password generated for
them and kept in the state directory (0600), and an older trust-auth data directory is upgraded
on start. Each test starts real servers: a few seconds each."""

from __future__ import annotations

import json
import socket
import stat
import subprocess

import psycopg
import pytest
import redis

from paygate.embedded import (
    CREDENTIALS_FILE,
    _as_unprivileged,
    _pg_bin,
    free_port,
    postgres_in,
    valkey_in,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_ambient_password(monkeypatch):
    """Only what a test passes may authenticate: no PGPASSWORD, no ~/.pgpass."""
    for name in ("PGPASSWORD", "PGPASSFILE", "PGUSER", "PGHOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent/pgpass")


def pg_connect(pg, password: str | None, over_socket: bool = False) -> psycopg.Connection:
    params = {"user": "postgres", "dbname": "postgres", "port": pg.port, "connect_timeout": 5}
    params["host"] = str(pg.socket_dir) if over_socket else "127.0.0.1"
    if password is not None:
        params["password"] = password
    return psycopg.connect(**params)


def raw_ping(port: int) -> bytes:
    """The server's answer to a bare PING, as any client that skips AUTH would send it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        return sock.recv(256)


def assert_refused_without_password(pg) -> None:
    for over_socket in (False, True):
        for password in (None, "wrong"):
            with pytest.raises(psycopg.OperationalError, match="password"):
                pg_connect(pg, password, over_socket).close()


def test_embedded_servers_refuse_connections_without_their_generated_credentials(tmp_path):
    state = tmp_path / "state"
    pg = postgres_in(state, free_port()).start()
    kv = valkey_in(state, free_port()).start()
    try:
        credentials = state / CREDENTIALS_FILE
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        stored = json.loads(credentials.read_text())
        assert stored == {"postgres": pg.password, "valkey": kv.password}
        assert len(pg.password) >= 32 and pg.password != kv.password
        assert pg.password not in repr(pg) and kv.password not in repr(kv)

        assert_refused_without_password(pg)
        for over_socket in (False, True):
            with pg_connect(pg, pg.password, over_socket) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        with psycopg.connect(pg.url) as conn:  # the URL paygate up hands its children
            assert conn.execute("SELECT current_database()").fetchone() == ("paygate",)

        assert raw_ping(kv.port).startswith(b"-NOAUTH"), "PING without AUTH must be refused"
        with redis.Redis(port=kv.port, socket_timeout=5) as anonymous:
            with pytest.raises(redis.AuthenticationError):
                anonymous.ping()
        with redis.Redis(port=kv.port, password="wrong", socket_timeout=5) as guessing:
            with pytest.raises(redis.AuthenticationError):
                guessing.ping()
        with redis.Redis.from_url(kv.url, socket_timeout=5) as client:
            assert client.ping()
        assert stat.S_IMODE(kv.config_path.stat().st_mode) == 0o600
        assert kv.password not in " ".join(map(str, kv.proc.args)), "visible in ps"
    finally:
        kv.stop()
        pg.stop()

    # The next start (a later `paygate up`) reuses the same credentials.
    again_pg, again_kv = postgres_in(state, free_port()), valkey_in(state, free_port())
    assert (again_pg.password, again_kv.password) == (pg.password, kv.password)
    again_kv.start()
    try:
        with redis.Redis.from_url(again_kv.url, socket_timeout=5) as client:
            assert client.ping()
    finally:
        again_kv.stop()


def test_a_trust_auth_data_directory_from_an_earlier_version_is_upgraded_on_start(tmp_path):
    state = tmp_path / "state"
    data_dir = state / "postgres" / "data"
    data_dir.parent.mkdir(parents=True)
    # What earlier versions made: every local user trusted, no credentials file.
    subprocess.run(
        _as_unprivileged(
            [
                str(_pg_bin() / "initdb"),
                *("-D", str(data_dir), "-U", "postgres", "--auth=trust", "--no-sync"),
            ]
        ),
        check=True,
        capture_output=True,
    )
    pg = postgres_in(state, free_port())
    pg.start()
    try:
        assert_refused_without_password(pg)
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        hba = (data_dir / "pg_hba.conf").read_text()
        rules = [line for line in hba.splitlines() if line.strip() and not line.startswith("#")]
        assert rules and all(line.split()[-1] == "scram-sha-256" for line in rules)
        log = pg.log_path.read_text(errors="replace")
        assert pg.password not in log
    finally:
        pg.stop()
