"""Webhook delivery, one attempt at a time, in-process: the notifier plugin against real HTTP
receivers, the schedule as the database records it, and every way an attempt can fail."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import asdict
from datetime import timedelta

import pytest

from paygate.db import webhooks as repo
from paygate.services import webhooks
from paygate.services.webhooks import next_delay
from paygate.testing.receiver import Answer
from tests.factories import create_payment
from tests.fixtures import set_webhook_url


def send_test(ctx) -> str:
    from paygate.services import merchants

    return webhooks.send_test(ctx, merchants.get(ctx, "550e8400-e29b-41d4-a716-446655440000"))["id"]


def make_due(ctx, log_id: str) -> None:
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE webhook_logs SET next_retry_at = now() WHERE id = %s AND status = 'pending'",
            (log_id,),
        )


def row(ctx, log_id: str) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute("SELECT * FROM webhook_logs WHERE id = %s", (log_id,)).fetchone()


def attempts(ctx, log_id: str) -> list[dict]:
    with ctx.db.connection() as conn:
        return [asdict(a) for a in repo.attempts(conn, [log_id]).get(log_id, [])]


def test_the_schedule_functions_follow_the_contract_tables():
    test, production = (0, 5, 10, 15, 20), (0, 60, 300, 1800, 7200)
    assert [next_delay(test, n, False) for n in range(1, 6)] == [5, 10, 15, 20, None]
    assert [next_delay(production, n, False) for n in range(1, 6)] == [60, 300, 1800, 7200, None]
    assert next_delay(test, 1, True) is None


def test_a_2xx_answer_is_success_on_the_first_attempt(ctx, receiver):
    receiver.answer("/hooks", Answer(204, b""))
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(ctx)
    assert webhooks.deliver(ctx, log_id) == "success"
    done = row(ctx, log_id)
    assert done["status"] == "success" and done["attempts"] == 1
    assert done["response_code"] == 204 and done["next_retry_at"] is None
    assert webhooks.deliver(ctx, log_id) == "skipped"  # running the job twice sends once
    assert len(receiver.to("/hooks")) == 1
    (request,) = receiver.to("/hooks")
    assert request.body == done["body"].encode()
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "intervals, waits", [("true", [5, 10, 15, 20]), ("false", [60, 300, 1800, 7200])]
)
def test_failed_attempts_are_rescheduled_by_the_table_then_the_log_fails(
    make_ctx, receiver, intervals, waits
):
    ctx = make_ctx(WEBHOOK_RETRY_INTERVALS_TEST=intervals)
    receiver.answer("/hooks", Answer(500, b"down"))
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(ctx)
    for attempt, wait in enumerate(waits, start=1):
        assert webhooks.deliver(ctx, log_id) == "pending"
        state = row(ctx, log_id)
        assert state["attempts"] == attempt and state["response_code"] == 500
        assert state["next_retry_at"] - state["last_attempt_at"] == timedelta(seconds=wait)
        assert webhooks.deliver(ctx, log_id) == "skipped"  # not due yet: nothing is sent
        make_due(ctx, log_id)
    assert webhooks.deliver(ctx, log_id) == "failed"
    final = row(ctx, log_id)
    assert final["status"] == "failed" and final["attempts"] == 5
    assert final["next_retry_at"] is None
    make_due(ctx, log_id)
    assert webhooks.deliver(ctx, log_id) == "skipped"  # no sixth attempt
    assert len(receiver.to("/hooks")) == 5
    assert [a["attempt"] for a in attempts(ctx, log_id)] == [1, 2, 3, 4, 5]


def test_the_first_4_kib_of_the_answer_is_recorded(ctx, receiver):
    receiver.answer("/hooks", Answer(500, "é".encode() + b"x" * 10_000))
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(ctx)
    webhooks.deliver(ctx, log_id)
    body = row(ctx, log_id)["response_body"]
    assert body.startswith("éx") and len(body.encode()) <= 4096 and len(body) >= 4000
    assert attempts(ctx, log_id)[0]["response_body"] == body


def test_a_redirect_is_not_followed_and_counts_as_a_failure(ctx, receiver):
    receiver.answer("/hooks", Answer(302, b"", {"Location": receiver.url("/elsewhere")}))
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(ctx)
    assert webhooks.deliver(ctx, log_id) == "pending"
    assert row(ctx, log_id)["response_code"] == 302
    assert receiver.to("/elsewhere") == []


def test_an_answer_slower_than_the_timeout_is_a_failed_attempt(make_ctx, receiver):
    ctx = make_ctx(PAYGATE_WEBHOOK_TIMEOUT="0.5")
    receiver.answer("/hooks", Answer(200, b"late", delay=2.0))
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(ctx)
    assert webhooks.deliver(ctx, log_id) == "pending"
    (attempt,) = attempts(ctx, log_id)
    assert attempt["error"] == "timeout" and attempt["response_code"] is None


def test_the_timeout_bounds_the_whole_attempt_not_each_read(make_ctx):
    """A receiver that drips its answer a byte at a time, each byte well inside the timeout,
    is cut off when the attempt as a whole runs out of time: it never gets to finish."""
    ctx = make_ctx(PAYGATE_WEBHOOK_TIMEOUT="1")
    server = socket.create_server(("127.0.0.1", 0))
    finished = []

    def drip():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            answer = (
                b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 30 + b"\r\nContent-Length: 0\r\n\r\n"
            )
            try:
                for byte in answer:
                    conn.sendall(bytes([byte]))
                    time.sleep(0.1)
            except OSError:
                return
            finished.append(True)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        set_webhook_url(ctx, f"http://127.0.0.1:{server.getsockname()[1]}/hooks")
        log_id = send_test(ctx)
        assert webhooks.deliver(ctx, log_id) == "pending"
        (attempt,) = attempts(ctx, log_id)
        assert attempt["error"] == "timeout" and attempt["response_code"] is None
        thread.join(10)
        assert finished == []  # the connection was gone long before the answer was complete
    finally:
        server.close()


def test_a_refused_connection_is_a_failed_attempt(ctx):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    set_webhook_url(ctx, f"http://127.0.0.1:{port}/hooks")
    log_id = send_test(ctx)
    assert webhooks.deliver(ctx, log_id) == "pending"
    (attempt,) = attempts(ctx, log_id)
    assert attempt["response_code"] is None and attempt["error"].startswith("connection error")


def test_no_url_means_no_event_is_written_and_nothing_is_sent(ctx, api):
    create_payment(api)
    with ctx.db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM webhook_logs").fetchone()["n"] == 0


def test_a_url_removed_after_the_event_means_nothing_is_sent(ctx, receiver):
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(ctx)
    set_webhook_url(ctx, None)
    assert webhooks.deliver(ctx, log_id) == "no_url"
    state = row(ctx, log_id)
    assert state["status"] == "failed" and state["next_retry_at"] is None
    assert receiver.requests == []


def test_each_attempt_goes_to_the_url_configured_now(ctx, receiver):
    receiver.answer("/old", 500)
    set_webhook_url(ctx, receiver.url("/old"))
    log_id = send_test(ctx)
    webhooks.deliver(ctx, log_id)
    set_webhook_url(ctx, receiver.url("/new"))
    make_due(ctx, log_id)
    assert webhooks.deliver(ctx, log_id) == "success"
    assert len(receiver.to("/old")) == 1 and len(receiver.to("/new")) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_without_the_switch_a_private_address_is_refused_at_connect_time(make_ctx, receiver, host):
    """The URL was stored when it looked harmless (or its name resolves differently now): the
    notifier checks the address it is about to connect to and sends nothing."""
    ctx = make_ctx(PAYGATE_ALLOW_PRIVATE_WEBHOOKS="false")
    set_webhook_url(ctx, receiver.url(host=host))
    log_id = send_test(ctx)
    assert webhooks.deliver(ctx, log_id) == "pending"
    (attempt,) = attempts(ctx, log_id)
    assert attempt["error"] == "address not allowed: 127.0.0.1"
    assert receiver.requests == []


def test_an_attempt_that_lost_its_lease_records_nothing(ctx, receiver):
    """A manual retry while an attempt is in flight: the late outcome must not overwrite the
    reset (the claim's lease is the attempt's token)."""
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(ctx)
    with ctx.db.connection() as conn:
        claimed = repo.claim(conn, log_id, 30)
        repo.reset_for_retry(conn, log_id, claimed["merchant_id"])
        late = repo.record_attempt(
            conn,
            {
                "id": log_id,
                "lease": claimed["locked_until"],
                "attempt": 1,
                "url": receiver.url(),
                "ok": False,
                "response_code": 500,
                "response_body": "",
                "error": None,
                "duration_ms": 1,
                "next_delay": 5.0,
            },
        )
    assert late is None
    state = row(ctx, log_id)
    assert state["attempts"] == 0 and state["response_code"] is None
    assert attempts(ctx, log_id) == []
    assert webhooks.deliver(ctx, log_id) == "success"


def test_a_leased_delivery_is_not_taken_by_a_second_worker(ctx, receiver):
    set_webhook_url(ctx, receiver.url())
    log_id = send_test(ctx)
    with ctx.db.connection() as conn:
        assert repo.claim(conn, log_id, 30) is not None
    assert webhooks.deliver(ctx, log_id) == "skipped"
    assert receiver.requests == []


def test_keep_alive_connections_are_reused_between_deliveries(ctx, receiver):
    # An answer longer than what is recorded is read to its end so its connection is reused.
    receiver.answer("/hooks", Answer(200, b"x" * 6000))
    set_webhook_url(ctx, receiver.url())
    for _ in range(3):
        assert webhooks.deliver(ctx, send_test(ctx)) == "success"
    assert len({r.client_port for r in receiver.to("/hooks")}) == 1
