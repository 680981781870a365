"""``paygate worker-alive``, the worker pods' liveness probe (deploy/kubernetes/worker.yaml):
exit 1 only when Redis answers and no worker on this host beats; Redis away is exit 0. With
``--ready`` (the readiness probe) a pod is ready only once a beat of its own is seen."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import pytest
from redis import Redis

from paygate.embedded import free_port
from paygate.jobs import heartbeat
from paygate.supervisor import redact_url

TTL = 10.0


@pytest.fixture
def probe_env(redis_url, tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "PAYGATE_QUEUE": f"paygate-alive-{secrets.token_hex(4)}",
        "PAYGATE_HEARTBEAT_TTL": str(TTL),
        "PAYGATE_STATE_DIR": str(tmp_path),  # no `paygate up` run file to pick databases from
    }


def alive(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "paygate", "worker-alive", *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_worker_alive_follows_this_hosts_heartbeat(redis_url, probe_env):
    key = f"{probe_env['PAYGATE_QUEUE']}:workers"
    conn = Redis.from_url(redis_url)
    try:
        result = alive(probe_env)
        assert result.returncode == 1, result
        assert "no worker on" in result.stderr
        # The Redis it asked, password masked: an operator sees a probe aimed at the wrong one.
        assert f"redis {redact_url(redis_url)})" in result.stderr

        conn.zadd(key, {"another-pod:1": time.time()})  # a worker elsewhere is not ours
        assert alive(probe_env).returncode == 1

        conn.zadd(key, {heartbeat.worker_name(): time.time() - TTL - 5})  # ours, but stale
        assert alive(probe_env).returncode == 1

        heartbeat.beat(conn, key, heartbeat.worker_name(), TTL)  # as the worker's thread does
        result = alive(probe_env)
        assert result.returncode == 0, result
        assert "is beating" in result.stdout
    finally:
        conn.delete(key)
        conn.close()


def test_redis_away_is_not_the_workers_fault(probe_env):
    env = {**probe_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = alive(env)
    assert result.returncode == 0, result
    assert f"redis {env['REDIS_URL']} unreachable" in result.stdout


def test_ready_needs_a_beat_of_this_host_before_the_first_one_and_with_redis_away(
    redis_url, probe_env
):
    key = f"{probe_env['PAYGATE_QUEUE']}:workers"
    conn = Redis.from_url(redis_url)
    try:
        result = alive(probe_env, "--ready")  # a worker still starting: no beat yet
        assert result.returncode == 1, result
        assert "no worker on" in result.stderr
        # The Redis it asked, password masked: an operator sees a probe aimed at the wrong one.
        assert f"redis {redact_url(redis_url)})" in result.stderr

        heartbeat.beat(conn, key, heartbeat.worker_name(), TTL)
        result = alive(probe_env, "--ready")
        assert result.returncode == 0, result
        assert "is beating" in result.stdout
    finally:
        conn.delete(key)
        conn.close()

    away = {**probe_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = alive(away, "--ready")  # nothing proves this pod beat: not ready (liveness says 0)
    assert result.returncode == 1, result
    assert "not ready" in result.stderr
