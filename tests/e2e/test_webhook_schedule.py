"""The retry schedule end to end: real gunicorn API, real Huey workers, real Redis, real
receivers, WEBHOOK_RETRY_INTERVALS_TEST=true (waits of 5/10/15/20 s between the five attempts).

Two gateways run side by side, each on its own database and Redis, so the ~50 s schedule is
paid once for both:

- *calm*: nothing goes wrong but the receivers;
- *chaos*: its worker is SIGKILLed (and a new one started) between attempts 2 and 3, and its
  Redis is flushed (FLUSHALL on a Valkey of its own) between attempts 3 and 4.

In each, merchant A's receiver always answers 500 and merchant B's answers 500, 500, then 200.
Every wait must be within 1 s of the table, measured where the merchant sees it (arrival at the
receiver) and where the log records it (``webhook_attempts.attempted_at``).
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from paygate.db import connect
from paygate.embedded import free_port, valkey_in
from paygate.testing.receiver import Answer, Receiver
from tests.fixtures import OTHER_AUTH, TEST_ENV, Gateway, insert_other_merchant, wait_for

# The chaos gateway makes the module a fault-injection test; both gateways share its ~55 s.
pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

WAITS = (5, 10, 15, 20)  # before attempts 2..5
TOLERANCE = 1.0
FLAKY = (Answer(500, b"nope"), Answer(500, b"nope"), Answer(200, b"ok"))


@dataclass
class Run:
    name: str
    gateway: Gateway
    database_url: str
    receiver: Receiver
    sent_at: dict[str, float] = field(default_factory=dict)  # merchant -> POST /test time
    log_ids: dict[str, str] = field(default_factory=dict)
    disruptions: list[tuple[str, int]] = field(default_factory=list)  # (what, after attempt n)
    mid_run_jobs: dict | None = None

    def path(self, merchant: str) -> str:
        return f"/{self.name}/{merchant}"

    def arrivals(self, merchant: str) -> list[float]:
        return [r.at for r in self.receiver.to(self.path(merchant))]

    def recorded(self, merchant: str) -> list[float]:
        with connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT extract(epoch FROM attempted_at)::float8 AS at FROM webhook_attempts"
                " WHERE webhook_log_id = %s ORDER BY attempt",
                (self.log_ids[merchant],),
            ).fetchall()
        return [r["at"] for r in rows]

    def listed(self, merchant: str) -> dict:
        headers = OTHER_AUTH if merchant == "flaky" else {}
        page = self.gateway.api_call("GET", "/api/v1/webhooks", headers=headers).json()
        (log,) = [row for row in page["data"] if row["id"] == self.log_ids[merchant]]
        return log


def _database(admin_url: str, name: str) -> str:
    with connect(admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


def _start(
    name: str, receiver: Receiver, database_url: str, redis_url: str, tmp, started: list
) -> Run:
    env = {
        **os.environ,
        **TEST_ENV,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PAYGATE_QUEUE": f"paygate-webhook-{name}-{secrets.token_hex(3)}",
        "PAYGATE_JANITOR_INTERVAL": "0.2",
        "PAYGATE_LOG_LEVEL": "INFO",
    }
    (tmp / name).mkdir()
    gateway = Gateway(env=env, tmp=str(tmp / name))
    run = Run(name, gateway, database_url, receiver)
    started.append(run)  # stopped and dropped at the end even if it fails to start
    gateway.start_api()  # migrates and seeds the test merchant
    with connect(database_url) as conn:
        insert_other_merchant(conn)
    gateway.start_worker()
    gateway.wait_healthy(worker=True)
    receiver.answer(run.path("always"), Answer(500, b"down"))
    receiver.answer(run.path("flaky"), *FLAKY)
    for merchant, headers in (("always", {}), ("flaky", OTHER_AUTH)):
        configured = gateway.api_call(
            "POST",
            "/api/v1/webhooks/config",
            json={"webhook_url": receiver.url(run.path(merchant))},
            headers=headers,
        )
        assert configured.status_code == 200, configured.text
    return run


def _send_tests(run: Run) -> None:
    for merchant, headers in (("always", {}), ("flaky", OTHER_AUTH)):
        run.sent_at[merchant] = time.time()
        sent = run.gateway.api_call("POST", "/api/v1/webhooks/test", headers=headers)
        assert sent.status_code == 202, sent.text
        run.log_ids[merchant] = sent.json()["id"]


@pytest.fixture(scope="module")
def runs(paygate_services, tmp_path_factory):
    services = paygate_services
    tmp = tmp_path_factory.mktemp("webhook-schedule")
    prefix = services.database_name
    valkey = valkey_in(tmp / "valkey", free_port()).start()
    receiver = Receiver()
    started: list[Run] = []
    try:
        with ThreadPoolExecutor(2) as pool:  # start both gateways at once
            calm_db = _database(services.admin_url, f"{prefix}_wh_calm")
            chaos_db = _database(services.admin_url, f"{prefix}_wh_chaos")
            calm_start = pool.submit(
                _start, "calm", receiver, calm_db, os.environ["REDIS_URL"], tmp, started
            )
            chaos_start = pool.submit(_start, "chaos", receiver, chaos_db, valkey.url, tmp, started)
            calm, chaos = calm_start.result(), chaos_start.result()
        _send_tests(calm)
        _send_tests(chaos)

        # Between attempts 2 and 3 (~10 s of quiet): kill the worker outright, start another.
        receiver.wait_for(chaos.path("always"), 2, timeout=10)
        time.sleep(1.0)
        chaos.gateway.stop("worker", signal.SIGKILL)
        chaos.gateway.start_worker("worker-restarted")
        chaos.disruptions.append(("worker SIGKILLed and restarted", 2))
        calm.mid_run_jobs = calm.gateway.api_call("GET", "/api/v1/test/jobs/status").json()

        # Between attempts 3 and 4 (~15 s of quiet): wipe Redis.
        receiver.wait_for(chaos.path("always"), 3, timeout=15)
        time.sleep(1.0)
        with redis.Redis.from_url(valkey.url) as conn:
            conn.flushall()
        chaos.disruptions.append(("Redis flushed", 3))

        for run in (calm, chaos):
            receiver.wait_for(run.path("always"), 5, timeout=40)
            wait_for(
                lambda run=run: run.listed("always")["status"] == "failed",
                timeout=5,
                message=f"{run.name}: the log did not end failed",
            )
        time.sleep(1.0)  # five janitor sweeps: a sixth attempt would show by now
        yield {"calm": calm, "chaos": chaos}
    finally:
        for run in started:  # nothing of theirs is kept: no need for a graceful stop
            for name in list(run.gateway.procs):
                run.gateway.stop(name, signal.SIGKILL)
        receiver.close()
        valkey.kill()
        with connect(services.admin_url) as conn:
            for run in started:
                name = urlsplit(run.database_url).path.lstrip("/")
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def assert_on_schedule(times: list[float], first_expected_at: float, what: str) -> None:
    """Attempt 1 within 1 s of the event, then each wait within 1 s of the table."""
    first = round(times[0] - first_expected_at, 2)
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)]
    print(f"{what}: attempt 1 after {first} s, then waits of {gaps} s")
    assert abs(first) <= TOLERANCE, f"{what}: first attempt {first} s after the event"
    for gap, wait in zip(gaps, WAITS, strict=False):
        assert abs(gap - wait) <= TOLERANCE, f"{what}: waits {gaps}, expected {WAITS}"


def test_an_always_failing_receiver_gets_five_attempts_on_schedule_then_the_log_fails(runs):
    run = runs["calm"]
    arrivals = run.arrivals("always")
    assert len(arrivals) == 5  # and no sixth
    assert_on_schedule(arrivals, run.sent_at["always"], "receiver")
    assert_on_schedule(run.recorded("always"), run.sent_at["always"], "log")
    log = run.listed("always")
    assert log["status"] == "failed" and log["attempts"] == 5
    assert log["next_retry_at"] is None and log["response_code"] == 500


def test_a_receiver_that_fails_twice_then_succeeds_ends_success_after_three_attempts(runs):
    run = runs["calm"]
    arrivals = run.arrivals("flaky")
    assert len(arrivals) == 3
    assert_on_schedule(arrivals, run.sent_at["flaky"], "receiver")
    log = run.listed("flaky")
    assert log["status"] == "success" and log["attempts"] == 3
    assert log["response_code"] == 200 and log["next_retry_at"] is None


def test_the_schedule_completes_across_a_worker_sigkill_and_a_redis_flush(runs):
    run = runs["chaos"]
    assert run.disruptions == [
        ("worker SIGKILLed and restarted", 2),
        ("Redis flushed", 3),
    ]
    arrivals = run.arrivals("always")
    assert len(arrivals) == 5
    assert_on_schedule(arrivals, run.sent_at["always"], "receiver")
    assert_on_schedule(run.recorded("always"), run.sent_at["always"], "log")
    always = run.listed("always")
    assert always["status"] == "failed" and always["attempts"] == 5
    assert always["next_retry_at"] is None
    flaky = run.arrivals("flaky")
    assert len(flaky) == 3
    assert_on_schedule(flaky, run.sent_at["flaky"], "receiver")
    assert run.listed("flaky")["status"] == "success"


def test_job_status_counts_scheduled_retries_then_outcomes_with_the_worker_running(runs):
    run = runs["calm"]
    assert run.mid_run_jobs == {
        "pending": 2,  # both deliveries wait for their next attempt
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "worker_status": "running",
    }
    final = run.gateway.api_call("GET", "/api/v1/test/jobs/status").json()
    assert final == {
        "pending": 0,
        "processing": 0,
        "completed": 1,
        "failed": 1,
        "worker_status": "running",
    }


def test_manual_retry_of_the_failed_log_is_delivered_again_by_the_worker(runs):
    """Last in the module: it turns the calm run's failed log into a delivered one."""
    run = runs["calm"]
    log_id = run.log_ids["always"]
    run.receiver.answer(run.path("always"), Answer(200, b"ok"))
    result = run.gateway.api_call("POST", f"/api/v1/webhooks/{log_id}/retry")
    assert result.status_code == 200
    assert result.json() == {
        "id": log_id,
        "status": "pending",
        "message": "Webhook retry scheduled",
    }
    requests = run.receiver.wait_for(run.path("always"), 6, timeout=5)
    assert requests[-1].body == requests[0].body
    wait_for(lambda: run.listed("always")["status"] == "success", timeout=5)
    assert run.listed("always")["attempts"] == 1
    foreign = run.gateway.api_call("POST", f"/api/v1/webhooks/{run.log_ids['flaky']}/retry")
    assert foreign.status_code == 404
    assert foreign.json()["error"]["description"] == "Webhook log not found"
