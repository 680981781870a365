"""The one test webhook receiver (``paygate.testing.Receiver``): what it records, how it
answers, and that it keeps connections alive like a merchant's server."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
import requests

from paygate.testing.receiver import Answer, Receiver
from tests.clock import FakeClock


def test_records_method_path_headers_body_and_the_moment_from_its_clock():
    clock = FakeClock(start=42.0)
    with Receiver(clock=clock) as stamped:
        requests.post(stamped.url("/hooks?x=1"), data=b'{"a":1}', headers={"X-T": "v"})
    (got,) = stamped.requests
    assert (got.method, got.path, got.body, got.at) == ("POST", "/hooks", b'{"a":1}', 42.0)
    assert got.headers["X-T"] == "v"


def test_a_script_answers_in_order_and_its_last_answer_repeats(receiver):
    receiver.answer("/hooks", Answer(500, b"down"), 200)
    statuses = [requests.post(receiver.url(), data=b"x").status_code for _ in range(3)]
    assert statuses == [500, 200, 200]
    assert len(receiver.to("/hooks")) == 3 and receiver.to("/other") == []


def test_a_function_can_answer_from_the_request(receiver):
    receiver.answer_with("/echo", lambda request: Answer(201, request.body.upper()))
    answer = requests.post(receiver.url("/echo"), data=b"hi")
    assert (answer.status_code, answer.content) == (201, b"HI")


def test_unscripted_paths_get_the_receivers_status_and_a_redirect_has_a_location(receiver):
    receiver.status = 307
    answer = requests.post(receiver.url(), data=b"x", allow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["Location"] == receiver.url("/redirected")


def test_a_keep_alive_sender_reuses_one_connection(receiver):
    with requests.Session() as session:
        for _ in range(3):
            session.post(receiver.url(), data=b"x")
    assert len({r.client_port for r in receiver.requests}) == 1


def test_a_sender_that_dies_mid_request_delivered_nothing(receiver):
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.sendall(b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    requests.post(receiver.url("/after"), data=b"x")  # served after the broken one
    assert [r.path for r in receiver.requests] == ["/after"]


def test_wait_for_returns_the_requests_or_says_how_many_came(receiver):
    requests.post(receiver.url(), data=b"x")
    assert len(receiver.wait_for("/hooks", 1, timeout=1)) == 1
    with pytest.raises(AssertionError, match="/hooks: 1 requests, expected 2"):
        receiver.wait_for("/hooks", 2, timeout=0.1)


def test_a_delayed_answer_is_cut_short_when_the_receiver_closes():
    slow = Receiver(delay=30.0)
    answered = threading.Event()

    def post():
        try:
            requests.post(slow.url(), data=b"x", timeout=10)
        except requests.RequestException:
            pass
        answered.set()

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    slow.wait_for("/hooks", 1, timeout=5)
    slow.close()
    assert answered.wait(5), "the delayed answer outlived the receiver"


def test_the_closed_port_refuses_connections():
    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://127.0.0.1:{Receiver.closed_port()}/", timeout=2)


def test_it_serves_when_the_callers_thread_runs_an_event_loop():
    """Playwright's sync API runs a loop on the test's thread: the receiver has its own."""

    async def inside_a_loop() -> int:
        with Receiver() as inside:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: requests.post(inside.url(), data=b"x"))
            return len(inside.requests)

    # In a thread of its own: a test run that used Playwright's sync API earlier may leave that
    # loop running on the main thread, where asyncio.run() refuses to start a second one.
    served: list[int] = []
    caller = threading.Thread(target=lambda: served.append(asyncio.run(inside_a_loop())))
    caller.start()
    caller.join(30)
    assert served == [1]
