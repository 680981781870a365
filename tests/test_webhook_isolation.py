"""Webhook isolation: the deliveries' own queue and consumer, each endpoint's concurrency cap
and circuit breaker (unit: the state machine; integration: real PostgreSQL, Redis and HTTP
receivers that hang or fail, and a real webhook consumer's threads in process)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from paygate.jobs import webhook_consumer
from paygate.jobs.queue import webhook_queue_name
from paygate.jobs.worker import CONSUMER_FLAGS
from paygate.services import merchants, recovery, webhook_circuits, webhooks
from paygate.services.webhook_circuits import Circuit, admit, after_attempt
from paygate.testing.receiver import Answer
from tests.factories import create_payment
from tests.fixtures import (
    AUTH,
    TEST_MERCHANT_ID,
    make_settings,
    run_queue,
    set_webhook_url,
    wait_for,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = make_settings(
    PAYGATE_WEBHOOK_BREAKER_FAILURES="3",
    PAYGATE_WEBHOOK_BREAKER_OPEN="30",
    PAYGATE_WEBHOOK_BREAKER_MAX_OPEN="100",
)


# -- unit: the breaker's state machine --------------------------------------------------------


def test_a_closed_breaker_admits_every_delivery():
    assert admit(Circuit(), NOW) == "deliver"
    assert admit(Circuit("closed", 2, None, None), NOW) == "deliver"


def test_an_open_breaker_holds_until_its_reopen_time_then_lets_one_probe_go():
    opened = Circuit("open", 3, 30.0, NOW + timedelta(seconds=30))
    assert admit(opened, NOW) == "open"
    later = NOW + timedelta(seconds=30)
    assert admit(opened, later) == "probe"
    # Half-open: retry_at is the probe's lease end.
    half = Circuit("half_open", 3, 30.0, later + timedelta(seconds=25))
    assert admit(half, later) == "probing"  # the probe is in flight
    assert admit(half, later + timedelta(seconds=25)) == "probe"  # the prober died


def test_the_slots_are_a_semaphore_per_endpoint_and_vanish_when_unused():
    slots = webhook_circuits.Slots()
    a, b = ("m", "primary", 2), ("m", "other", 2)
    first, second = slots.acquire(a, 2, 0), slots.acquire(a, 2, 0)
    assert first is not None and second is not None
    started = time.monotonic()
    assert slots.acquire(a, 2, 0.2) is None  # the cap is reached: it waited, then gave up
    assert time.monotonic() - started >= 0.2
    other = slots.acquire(b, 2, 0)  # another endpoint has its own
    assert other is not None and slots.free(a, 2) == 0
    assert slots.release(a, first) == 1
    third = slots.acquire(a, 2, 0)
    assert third is not None
    time.sleep(0.1)  # its oldest attempt now runs longer than the wait: a slow endpoint
    started = time.monotonic()
    assert slots.acquire(a, 2, 0.05) is None and time.monotonic() - started < 0.04
    assert slots.slow(a, 0.05) and not slots.slow(b, 1)
    for key, token in ((a, second), (a, third), (b, other)):
        slots.release(key, token)
    assert slots._slots == {}  # nothing kept for endpoints no thread uses
    slots.mark_deferred(a)
    assert slots.take_deferred(a) and not slots.take_deferred(a)


def test_failures_in_a_row_open_it_and_a_success_resets_the_count():
    circuit, change = Circuit(), None
    for _ in range(2):
        circuit, change = after_attempt(circuit, False, NOW, SETTINGS)
        assert change is None and circuit.state == "closed"
    assert circuit.failures == 2
    reset, change = after_attempt(circuit, True, NOW, SETTINGS)
    assert reset == Circuit() and change is None  # nothing to log: it never opened
    circuit = reset
    for _ in range(3):
        circuit, change = after_attempt(circuit, False, NOW, SETTINGS)
    assert change == "opened" and circuit.state == "open" and circuit.failures == 3
    assert circuit.open_seconds == 30 and circuit.retry_at == NOW + timedelta(seconds=30)
    straggler, change = after_attempt(circuit, False, NOW, SETTINGS)
    assert change is None and straggler.retry_at == circuit.retry_at  # stays open as it was


def test_a_failed_probe_doubles_the_open_time_up_to_the_maximum_and_a_success_closes():
    circuit = Circuit("half_open", 3, 30.0, None)
    circuit, change = after_attempt(circuit, False, NOW, SETTINGS)
    assert change == "reopened" and circuit.open_seconds == 60
    assert circuit.retry_at == NOW + timedelta(seconds=60)
    circuit, _ = after_attempt(Circuit("half_open", 4, 60.0, None), False, NOW, SETTINGS)
    assert circuit.open_seconds == 100  # PAYGATE_WEBHOOK_BREAKER_MAX_OPEN
    closed, change = after_attempt(Circuit("half_open", 4, 60.0, None), True, NOW, SETTINGS)
    assert closed == Circuit() and change == "closed"


def test_the_view_shows_an_open_breaker_past_its_reopen_time_as_half_open():
    opened = Circuit("open", 5, 30.0, NOW + timedelta(seconds=30))
    shown = webhook_circuits.view(opened, NOW)
    assert shown == {"state": "open", "failures": 5, "retry_at": "2026-01-01T00:00:30Z"}
    due = webhook_circuits.view(opened, NOW + timedelta(seconds=31))
    assert due == {"state": "half_open", "failures": 5, "retry_at": None}
    assert webhook_circuits.view(Circuit(), NOW) == webhook_circuits.CLOSED_VIEW


# -- integration: the queues ------------------------------------------------------------------


def test_deliveries_go_to_their_own_queue_and_payments_stay_on_the_main_one(ctx, api, receiver):
    set_webhook_url(ctx, receiver.url())
    queue = run_queue(ctx.settings)
    assert queue.webhook_huey.name == webhook_queue_name(ctx.settings.queue_name)
    assert queue.webhook_huey.name == f"{ctx.settings.queue_name}-webhooks"
    create_payment(api, 50000, {"method": "upi", "vpa": "success@test"}, headers=AUTH)
    main = [task.name for task in queue.huey.pending()]
    hooks = [task.name for task in queue.webhook_huey.pending()]
    assert main == ["process_payment"]
    assert hooks and set(hooks) == {"deliver_webhook"}
    assert queue.dispatcher.backlog() == len(main) + len(hooks)
    queue.flush()
    assert queue.huey.pending_count() == 0 and queue.webhook_huey.pending_count() == 0


def test_the_webhook_consumer_delivers_with_its_own_threads(ctx, receiver):
    set_webhook_url(ctx, receiver.url())
    queue = run_queue(ctx.settings)
    queue.bind(ctx)
    log_id = send_test(ctx)  # enqueued on the webhook queue; nothing consumes the main one
    running = webhook_consumer.start(ctx, queue, CONSUMER_FLAGS, threads=2)
    try:
        wait_for(lambda: receiver.to("/hooks"), timeout=10, message="not delivered")
        wait_for(lambda: log_row(ctx, log_id)["status"] == "success", timeout=5)
        assert len(running.consumer.worker_threads) == 2
    finally:
        running.stop()
    assert running.consumer.stop_flag.is_set()


# -- integration: the cap and the breaker against real receivers ------------------------------


def send_test(ctx) -> str:
    return webhooks.send_test(ctx, merchants.get(ctx, TEST_MERCHANT_ID))["id"]


def log_row(ctx, log_id: str) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute("SELECT * FROM webhook_logs WHERE id = %s", (log_id,)).fetchone()


def circuit_row(ctx) -> dict | None:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT * FROM webhook_circuits WHERE merchant_id = %s AND endpoint = 'primary'",
            (TEST_MERCHANT_ID,),
        ).fetchone()


def make_due(ctx, *log_ids: str) -> None:
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE webhook_logs SET next_retry_at = now() WHERE id = ANY(%s)", (list(log_ids),)
        )


def attempts(ctx, log_id: str) -> int:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT count(*) AS n FROM webhook_attempts WHERE webhook_log_id = %s", (log_id,)
        ).fetchone()["n"]


def deliver_at_once(ctx, log_ids: list[str]) -> dict[str, str]:
    results: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, webhooks.deliver(ctx, i)))
        for i in log_ids
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # in order: the first two take the slots
    for thread in threads:
        thread.join(15)
    return results


def test_an_endpoint_at_its_cap_defers_the_next_delivery_without_an_attempt(make_ctx, receiver):
    ctx = make_ctx(PAYGATE_WEBHOOK_TIMEOUT="1", PAYGATE_WEBHOOK_ENDPOINT_CONCURRENCY="2")
    receiver.answer("/hooks", Answer(200, b"ok", delay=5))  # hangs past the timeout
    set_webhook_url(ctx, receiver.url())
    ids = [send_test(ctx) for _ in range(3)]
    started = time.monotonic()
    results = deliver_at_once(ctx, ids)
    assert time.monotonic() - started < 3
    assert [results[i] for i in ids] == ["pending", "pending", "deferred"]
    assert len(receiver.to("/hooks")) == 2  # never more than the cap at once
    deferred = log_row(ctx, ids[2])
    assert deferred["attempts"] == 0 and attempts(ctx, ids[2]) == 0  # not an attempt
    assert deferred["status"] == "pending"
    # The end of the two attempts brought it forward (due now, enqueued): nothing waits.
    assert not deferred["deferred"] and deferred["next_retry_at"] <= datetime.now(UTC)
    queued = [task.args for task in run_queue(ctx.settings).webhook_huey.pending()]
    assert (ids[2],) in queued


def test_a_healthy_endpoint_costs_no_breaker_write_and_holds_nothing_in_the_database(ctx, receiver):
    receiver.answer("/hooks", Answer(200, b"ok", delay=1))
    set_webhook_url(ctx, receiver.url())
    ids = [send_test(ctx) for _ in range(2)]
    in_flight = threading.Thread(target=webhooks.deliver, args=(ctx, ids[0]))
    in_flight.start()
    wait_for(lambda: receiver.to("/hooks"), timeout=5, message="not sent")
    # Mid-delivery nothing about its slot is stored: a worker killed now leaves nothing behind
    # (its semaphore dies with it), and the lease alone guards the row.
    assert circuit_row(ctx) is None
    in_flight.join(10)
    assert log_row(ctx, ids[0])["status"] == "success"
    assert circuit_row(ctx) is None  # a success on a never-failed endpoint writes nothing
    assert webhook_circuits.SLOTS._slots == {}  # the slot was given back

    receiver.answer("/hooks", 500)
    assert webhooks.deliver(ctx, ids[1]) == "pending"
    failed = circuit_row(ctx)  # the first failure creates the row
    assert failed["state"] == "closed" and failed["failures"] == 1 and failed["version"] == 1
    receiver.answer("/hooks", 200)
    make_due(ctx, ids[1])
    assert webhooks.deliver(ctx, ids[1]) == "success"
    reset = circuit_row(ctx)  # a success after a failure resets the count
    assert reset["failures"] == 0 and reset["version"] == 2
    assert webhooks.deliver(ctx, send_test(ctx)) == "success"
    assert circuit_row(ctx)["version"] == 2  # and then nothing more is written


def test_a_probe_holds_the_others_until_its_lease_ends_and_a_dead_probers_then_ends(ctx, receiver):
    set_webhook_url(ctx, receiver.url())

    def probing(seconds: float) -> None:  # a probe taken by a worker, its lease ending then
        with ctx.db.connection() as conn:
            conn.execute(
                """INSERT INTO webhook_circuits
                          (merchant_id, endpoint, state, failures, open_seconds, retry_at, version)
                   VALUES (%s, 'primary', 'half_open', 5, 30, now() + make_interval(secs => %s), 7)
                   ON CONFLICT (merchant_id, endpoint) DO UPDATE
                      SET state = 'half_open', retry_at = excluded.retry_at""",
                (TEST_MERCHANT_ID, seconds),
            )

    probing(30)  # in flight: the others wait for its outcome or the end of its lease
    held = send_test(ctx)
    assert webhooks.deliver(ctx, held) == "deferred"
    assert log_row(ctx, held)["next_retry_at"] == circuit_row(ctx)["retry_at"]
    assert attempts(ctx, held) == 0 and not receiver.to("/hooks")

    probing(-1)  # its prober was killed: the lease ended, the next delivery goes as the probe
    make_due(ctx, held)
    assert webhooks.deliver(ctx, held) == "success"
    closed = circuit_row(ctx)
    assert closed["state"] == "closed" and closed["failures"] == 0
    assert closed["version"] == 9  # the probe taken (8), then closed (9)


def test_the_breaker_opens_defers_to_its_reopen_time_probes_and_closes(make_ctx, receiver, caplog):
    ctx = make_ctx(
        PAYGATE_WEBHOOK_BREAKER_FAILURES="3",
        PAYGATE_WEBHOOK_BREAKER_OPEN="1",
        PAYGATE_WEBHOOK_BREAKER_MAX_OPEN="600",
    )
    receiver.answer("/hooks", 500)
    set_webhook_url(ctx, receiver.url("/hooks"))
    caplog.set_level(logging.INFO, logger="paygate.services.webhook_circuits")
    ids = [send_test(ctx) for _ in range(4)]
    assert [webhooks.deliver(ctx, i) for i in ids[:3]] == ["pending"] * 3
    opened = circuit_row(ctx)
    assert opened["state"] == "open" and opened["failures"] == 3
    (line,) = [r.getMessage() for r in caplog.records if "opened" in r.getMessage()]
    assert TEST_MERCHANT_ID in line and "endpoint primary (127.0.0.1)" in line
    assert "paused until" in line

    assert webhooks.deliver(ctx, ids[3]) == "deferred"
    held = log_row(ctx, ids[3])
    assert held["deferred"] and held["next_retry_at"] == opened["retry_at"]
    assert held["attempts"] == 0 and attempts(ctx, ids[3]) == 0
    assert len(receiver.to("/hooks")) == 3
    # The janitor does not see it before the reopen time: no spinning on deferred rows.
    assert ids[3] not in recovery.due_work(ctx, 0)["webhook_logs"]
    shown = webhook_circuits.for_merchant(ctx, TEST_MERCHANT_ID)["primary"]
    assert shown["state"] == "open" and shown["retry_at"] is not None

    receiver.answer("/hooks", 200)  # the endpoint is fixed
    wait_for(lambda: ids[3] in recovery.due_work(ctx, 0)["webhook_logs"], timeout=5)
    make_due(ctx, *ids[:3])  # their retries, due too: only one goes, as the probe
    results = deliver_at_once(ctx, [ids[3], *ids[:3]])
    assert sorted(results.values()).count("success") >= 1
    assert circuit_row(ctx)["state"] == "closed" and circuit_row(ctx)["failures"] == 0
    assert any("breaker closed" in r.getMessage() for r in caplog.records)
    # Everything put off while it was open or probing comes back and is delivered.
    for log_id in ids:
        wait_for(
            lambda i=log_id: (
                webhooks.deliver(ctx, i) in ("success", "skipped")
                and log_row(ctx, i)["status"] == "success"
            ),
            timeout=10,
        )


def test_a_failed_probe_reopens_for_twice_as_long(make_ctx, receiver):
    ctx = make_ctx(
        PAYGATE_WEBHOOK_BREAKER_FAILURES="2",
        PAYGATE_WEBHOOK_BREAKER_OPEN="1",
        PAYGATE_WEBHOOK_BREAKER_MAX_OPEN="600",
    )
    receiver.answer("/hooks", 503)
    set_webhook_url(ctx, receiver.url())
    ids = [send_test(ctx) for _ in range(3)]
    assert [webhooks.deliver(ctx, i) for i in ids[:2]] == ["pending", "pending"]
    assert circuit_row(ctx)["open_seconds"] == 1
    wait_for(lambda: webhooks.deliver(ctx, ids[2]) == "pending", timeout=5)  # the probe
    reopened = circuit_row(ctx)
    assert reopened["state"] == "open" and reopened["open_seconds"] == 2
    assert len(receiver.to("/hooks")) == 3


def test_the_endpoints_api_shows_each_breaker(ctx, api, receiver):
    receiver.answer("/hooks", 500)
    set_webhook_url(ctx, receiver.url())
    made = api.simulate_post(
        "/api/v1/webhooks/endpoints", json={"url": receiver.url("/other")}, headers=AUTH
    )
    assert made.status_code == 201
    for _ in range(ctx.settings.webhook_breaker_failures):
        assert webhooks.deliver(ctx, send_test(ctx)) == "pending"
    listed = api.simulate_get("/api/v1/webhooks/endpoints", headers=AUTH).json["data"]
    primary, other = listed
    assert primary["id"] == "primary" and primary["circuit"]["state"] == "open"
    assert primary["circuit"]["failures"] == ctx.settings.webhook_breaker_failures
    assert primary["circuit"]["retry_at"].endswith("Z")
    assert other["circuit"] == {"state": "closed", "failures": 0, "retry_at": None}
    one = api.simulate_get("/api/v1/webhooks/endpoints/primary", headers=AUTH).json
    assert one["circuit"]["state"] == "open"


def test_a_manual_retry_lets_an_open_breaker_probe_at_once(ctx, api, receiver):
    receiver.answer("/hooks", 500)
    set_webhook_url(ctx, receiver.url())
    ids = [send_test(ctx) for _ in range(ctx.settings.webhook_breaker_failures)]
    for log_id in ids:
        webhooks.deliver(ctx, log_id)
    assert circuit_row(ctx)["state"] == "open"
    receiver.answer("/hooks", 200)
    assert api.simulate_post(f"/api/v1/webhooks/{ids[0]}/retry", headers=AUTH).status_code == 200
    assert webhooks.deliver(ctx, ids[0]) == "success"
    assert circuit_row(ctx)["state"] == "closed"


@pytest.mark.parametrize("name", ["deliver_webhook"])
def test_task_names_are_the_same_in_the_enqueuing_process_and_the_consumer(ctx, name):
    queue = run_queue(ctx.settings)
    assert f"paygate.jobs.tasks.{name}" in queue.webhook_huey._registry._registry
    assert f"paygate.jobs.tasks.{name}" not in queue.huey._registry._registry
    assert "paygate.jobs.tasks.process_payment" in queue.huey._registry._registry


# -- integration: test sends and manual retries are rate-limited per merchant -----------------


def test_tests_and_retries_past_the_limit_are_429_with_retry_after(
    make_ctx, other_merchant, receiver
):
    import falcon.testing

    from paygate.api.app import create_app
    from tests.fixtures import OTHER_AUTH

    ctx = make_ctx(PAYGATE_LIMIT_WEBHOOK_MANUAL="3/60")
    api = falcon.testing.TestClient(create_app(ctx), headers={"Content-Type": "application/json"})
    set_webhook_url(ctx, receiver.url())
    set_webhook_url(ctx, receiver.url(), merchant_id=other_merchant.id)
    endpoint = api.simulate_post(
        "/api/v1/webhooks/endpoints", json={"url": receiver.url("/e")}, headers=AUTH
    ).json["id"]
    first = api.simulate_post("/api/v1/webhooks/test", headers=AUTH)
    assert first.status_code == 202
    assert (
        api.simulate_post(f"/api/v1/webhooks/{first.json['id']}/retry", headers=AUTH).status_code
        == 200
    )
    path = f"/api/v1/webhooks/endpoints/{endpoint}/test"
    assert api.simulate_post(path, headers=AUTH).status_code == 202  # 3: tests and retries
    with ctx.db.connection() as conn:
        logs = conn.execute("SELECT count(*) AS n FROM webhook_logs").fetchone()["n"]
    for refused in (
        api.simulate_post("/api/v1/webhooks/test", headers=AUTH),
        api.simulate_post(path, headers=AUTH),
        api.simulate_post("/api/v1/webhooks/endpoints/primary/test", headers=AUTH),
        api.simulate_post(f"/api/v1/webhooks/{first.json['id']}/retry", headers=AUTH),
    ):
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        error = refused.json["error"]
        assert error["code"] == "RATE_LIMITED"
        assert error["description"].startswith(
            "Too many webhook tests and retries (at most 3 every 60 seconds). Try again in "
        )
    with ctx.db.connection() as conn:  # nothing written for the refused ones
        assert conn.execute("SELECT count(*) AS n FROM webhook_logs").fetchone()["n"] == logs
    # Per merchant: another merchant is not affected.
    assert api.simulate_post("/api/v1/webhooks/test", headers=OTHER_AUTH).status_code == 202


def test_only_requests_that_make_a_delivery_count_against_the_limit(make_ctx):
    """Retries of unknown logs (404) and tests refused for want of a URL (400) count nothing:
    a script retrying stale ids must not use up the merchant's tests and retries."""
    import uuid

    import falcon.testing

    from paygate.api.app import create_app

    ctx = make_ctx(PAYGATE_LIMIT_WEBHOOK_MANUAL="2/60")
    api = falcon.testing.TestClient(create_app(ctx), headers={"Content-Type": "application/json"})
    for _ in range(4):
        unknown = api.simulate_post(f"/api/v1/webhooks/{uuid.uuid4()}/retry", headers=AUTH)
        assert unknown.status_code == 404, unknown.text
        no_url = api.simulate_post("/api/v1/webhooks/test", headers=AUTH)
        assert no_url.status_code == 400, no_url.text
    set_webhook_url(ctx, "http://127.0.0.1:9/hooks")
    assert api.simulate_post("/api/v1/webhooks/test", headers=AUTH).status_code == 202
    assert api.simulate_post("/api/v1/webhooks/test", headers=AUTH).status_code == 202
    assert api.simulate_post("/api/v1/webhooks/test", headers=AUTH).status_code == 429


def test_the_dashboard_shows_the_limit_as_a_message_not_an_error_page(make_ctx, receiver):
    from paygate.web.dashboard.app import create_app as dashboard_app
    from tests.dashboard_client import DashboardClient, by_test_id

    ctx = make_ctx(PAYGATE_LIMIT_WEBHOOK_MANUAL="1/60")
    set_webhook_url(ctx, receiver.url())
    client = DashboardClient(dashboard_app(ctx))
    client.login()
    client.get("/dashboard/webhooks")
    form = {"action": "test", "webhook_url": receiver.url()}
    assert client.post("/dashboard/webhooks", form).status_code == 303
    refused = client.post("/dashboard/webhooks", form)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    (error,) = by_test_id(refused.text)["webhook-error"]
    assert "Too many webhook tests and retries (at most 1 every 60 seconds)" in error.text
    with ctx.db.connection() as conn:
        log_id = str(conn.execute("SELECT id FROM webhook_logs").fetchone()["id"])
    retried = client.post(f"/dashboard/webhooks/{log_id}/retry", {})
    assert retried.status_code == 303
    page = client.get(retried.headers["Location"])
    assert "Too many webhook tests and retries" in page.text
