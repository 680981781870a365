"""Event observers: the event log read in order without skipping, each observer's bookkeeping,
retries with back-off, one consumer per observer across workers, and observers independent of
each other and of payments and webhooks (the runner in paygate/jobs/observers.py)."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import uuid

import psycopg
import pytest

from paygate import events as catalogue
from paygate import hookimpl
from paygate.cli import main as paygate_main
from paygate.config import TEST_MERCHANT_ID
from paygate.db import events as events_repo
from paygate.db.events import START, Logged, LogPosition
from paygate.jobs import observers as runners
from paygate.jobs.observers import ObserverRunner
from paygate.services import merchants
from paygate.services import observers as service
from paygate.testing import register_plugin
from tests.clock import FakeClock
from tests.factories import service_payment
from tests.fixtures import OTHER_MERCHANT_ID, set_webhook_url, wait_for
from tests.plugins.helpers import fake_distribution


class Recorder:
    """An observer that keeps what it saw; ``failures`` makes its next calls raise."""

    def __init__(self, name: str, failures: int = 0):
        self.name = name
        self.failures = failures
        self.seen: list = []
        self.calls = 0

    def observe(self, event) -> None:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError(f"sink down (call {self.calls})")
        self.seen.append(event)


class Hanging:
    """An observer whose ``observe`` blocks until the test lets it go."""

    def __init__(self, name: str):
        self.name = name
        self.release = threading.Event()

    def observe(self, event) -> None:
        self.release.wait(30)


def record_event(conn, merchant_id: str = TEST_MERCHANT_ID, name: str = catalogue.PAYMENT_CREATED):
    event_id = uuid.uuid4()
    body = json.dumps({"event": name, "timestamp": 1, "data": {"n": str(event_id)}})
    conn.execute(
        "INSERT INTO events (id, merchant_id, event, resource_id, body) "
        "VALUES (%s, %s, %s, 'pay_1', %s)",
        (event_id, merchant_id, name, body),
    )
    return str(event_id)


def all_events(ctx) -> list[tuple[int, str, str]]:
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT seq, id, merchant_id FROM events ORDER BY txid, seq"  # the log's order
        ).fetchall()
    return [(r["seq"], str(r["id"]), str(r["merchant_id"])) for r in rows]


def settled(ctx, after: LogPosition, count: int) -> list[Logged]:
    """Wait until ``count`` events after ``after`` are readable (every transaction that
    started before them ended, on the whole server: other test runs may share it)."""
    return wait_for(
        lambda: len(found := service.next_events(ctx, after, 100)) >= count and found, timeout=10
    )


def drain(runner: ObserverRunner, seen: list, count: int) -> None:
    """Step until ``count`` events were seen. An event is readable once every transaction that
    started before it ended, on the whole server (other test runs may share it): wait for that."""
    wait_for(lambda: runner.step() is not None and len(seen) >= count, timeout=10)


def test_the_log_is_read_in_order_and_nothing_is_skipped_behind_a_running_transaction(
    ctx, clean, database_url
):
    with ctx.db.connection() as conn:
        first = record_event(conn)
    settled(ctx, START, 1)
    with psycopg.connect(database_url) as slow, psycopg.connect(database_url) as fast:
        slow_id = record_event(slow)  # takes the lower seq, commits last
        with fast.transaction():
            fast_id = record_event(fast)
        with ctx.db.connection() as conn:
            visible = conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"]
            assert visible == 2  # the later event is committed and visible...
            # ...but reading it now would skip the earlier one when it commits
            assert [x.event.id for x in events_repo.read_after(conn, START, 10)] == [first]
        slow.commit()
    settled(ctx, START, 3)
    with ctx.db.connection() as conn:
        read = events_repo.read_after(conn, START, 10)
    assert [x.event.id for x in read] == [first, slow_id, fast_id]
    assert [x.event.sequence for x in read] == sorted(x.event.sequence for x in read)
    event = read[1].event
    assert event.type == catalogue.PAYMENT_CREATED and event.merchant_id == TEST_MERCHANT_ID
    assert json.loads(event.body)["data"] == dict(event.data)
    with ctx.db.connection() as conn:
        after_first = events_repo.read_after(conn, read[0].position, 1)
    assert [x.event.id for x in after_first] == [slow_id]


def follow(ctx, position: LogPosition) -> tuple[list[str], LogPosition]:
    """Read everything readable after ``position``, as a reader would; the ids and where it
    stopped."""
    found = service.next_events(ctx, position, 100)
    return [x.event.id for x in found], (found[-1].position if found else position)


def test_nothing_is_skipped_when_an_older_transaction_takes_its_seq_after_a_younger_one(
    ctx, clean, database_url
):
    """The case a reader ordering by ``seq`` alone gets wrong: the older transaction (it wrote
    first) commits a higher seq while the younger one, holding a lower seq, is still open."""
    with ctx.db.connection() as conn:
        record_event(conn)
    position = settled(ctx, START, 1)[-1].position
    with psycopg.connect(database_url) as older, psycopg.connect(database_url) as younger:
        older.execute("SELECT pg_current_xact_id()")  # its id now, as an earlier write would
        younger_id = record_event(younger)  # the lower seq
        older_id = record_event(older)  # the higher seq
        older.commit()
        wait_for(lambda: follow(ctx, position)[0], timeout=10)
        ids, position = follow(ctx, position)
        assert ids == [older_id]  # readable now: nothing older can still commit
        younger.commit()
    ids_after = wait_for(lambda: follow(ctx, position)[0], timeout=10)
    assert ids_after == [younger_id]  # not skipped, although its seq is lower
    with ctx.db.connection() as conn:
        seqs = {
            str(r["id"]): r["seq"] for r in conn.execute("SELECT id, seq FROM events").fetchall()
        }
    assert seqs[younger_id] < seqs[older_id]


def test_a_new_observer_starts_at_the_head_of_the_log(ctx, clean):
    with ctx.db.connection() as conn:
        record_event(conn)
        record_event(conn)
    head = settled(ctx, START, 2)[-1].position
    with ctx.db.connection() as conn:
        assert events_repo.head(conn) == head
    recorder = Recorder("late")
    runner = ObserverRunner(ctx, recorder)
    runner.step()
    assert runner._position == head and recorder.seen == []
    with ctx.db.connection() as conn:
        later = record_event(conn)
    drain(runner, recorder.seen, 1)
    assert [e.id for e in recorder.seen] == [later]


def test_an_observer_receives_every_event_of_two_merchants_one_without_a_webhook_url(
    ctx, other_merchant, clean, receiver
):
    set_webhook_url(ctx, receiver.url("/hooks"), TEST_MERCHANT_ID)
    set_webhook_url(ctx, None, OTHER_MERCHANT_ID)
    recorder = Recorder("everything")
    runner = ObserverRunner(ctx, recorder)
    runner.step()  # starts here
    service_payment(ctx, merchants.get(ctx, TEST_MERCHANT_ID))
    service_payment(ctx, merchants.get(ctx, OTHER_MERCHANT_ID), vpa="failure@test")
    recorded = all_events(ctx)
    drain(runner, recorder.seen, len(recorded))
    assert {m for _, _, m in recorded} == {TEST_MERCHANT_ID, OTHER_MERCHANT_ID}
    assert [(e.sequence, e.id, e.merchant_id) for e in recorder.seen] == recorded
    types = {(e.merchant_id, e.type) for e in recorder.seen}
    assert (OTHER_MERCHANT_ID, catalogue.PAYMENT_FAILED) in types
    assert (TEST_MERCHANT_ID, catalogue.PAYMENT_SUCCESS) in types
    with ctx.db.connection() as conn:
        hooks = conn.execute("SELECT DISTINCT merchant_id FROM webhook_logs").fetchall()
        state = events_repo.positions(conn)[0]
    assert [str(r["merchant_id"]) for r in hooks] == [TEST_MERCHANT_ID]  # webhooks as before
    assert (state.observer, state.position, state.delivered, state.lag_events) == (
        "everything",
        recorded[-1][0],
        len(recorded),
        0,
    )


def test_a_failing_observer_retries_the_same_event_after_backing_off_then_moves_on(
    ctx, clean, caplog
):
    clock = FakeClock()
    recorder = Recorder("flaky")
    runner = ObserverRunner(ctx, recorder, schedule=(1, 2, 5), clock=clock)
    runner.step()
    with ctx.db.connection() as conn:
        first, second = record_event(conn), record_event(conn)
    settled(ctx, runner._position, 2)
    recorder.failures = 3
    caplog.set_level(logging.WARNING, logger="paygate.jobs.observers")
    attempts_at = []
    for _ in range(40):
        calls = recorder.calls
        wait = runner.step()
        if recorder.calls != calls:
            attempts_at.append(clock.now)
        if len(recorder.seen) == 2:
            break
        clock.now += wait or 0.25
    # The same event three times, 1, 2 and 5 s apart (the schedule), then both in order.
    assert [round(b - a, 2) for a, b in itertools.pairwise(attempts_at)] == [1, 2, 5]
    assert [e.id for e in recorder.seen] == [first, second]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all(r.exc_info is None for r in warnings)
    assert f"observer flaky failed on event {first}" in warnings[0].getMessage()
    assert "ConnectionError: sink down (call 1)" in warnings[0].getMessage()
    assert "next attempt in 1.0 s" in warnings[0].getMessage()
    assert "next attempt in 5.0 s" in warnings[2].getMessage()
    with ctx.db.connection() as conn:
        state = events_repo.positions(conn)[0]
    assert (state.attempts, state.last_error, state.delivered) == (0, None, 2)


def test_a_failure_is_kept_in_the_bookkeeping_and_shown_by_paygate_observers(ctx, clean, capsys):
    runner = ObserverRunner(ctx, Recorder("down", failures=99), schedule=(30,))
    runner.step()
    with ctx.db.connection() as conn:
        stuck = record_event(conn)
        record_event(conn)
    settled(ctx, runner._position, 2)
    runner.step()
    assert paygate_main(["observers", "--json"]) == 0
    shown = {o["name"]: o for o in json.loads(capsys.readouterr().out)["observers"]}["down"]
    assert shown["installed"] is False  # registered in this test only, not by an installed plugin
    assert (shown["lag_events"], shown["attempts"], shown["failing_event_id"]) == (2, 1, stuck)
    assert shown["last_error"] == "ConnectionError: sink down (call 1)"
    assert 29 <= shown["next_attempt_in_seconds"] <= 30
    assert paygate_main(["observers"]) == 0
    text = capsys.readouterr().out
    assert "down" in text and "behind by 2 events" in text and "sink down" in text


def test_a_hanging_or_failing_observer_does_not_delay_another(ctx, clean):
    hanging, failing, healthy = Hanging("hangs"), Recorder("fails", 10**6), Recorder("works")

    class Observers:
        @hookimpl
        def paygate_register_observers(self, register):
            for observer in (hanging, failing, healthy):
                register(observer)

    stopping = threading.Event()
    with register_plugin(ctx, Observers()):
        threads = runners.start(ctx, stopping, poll=0.05, call_timeout=0.5)
        try:
            wait_for(lambda: all_positions(ctx) == {"hangs", "fails", "works"})
            with ctx.db.connection() as conn:
                ids = [record_event(conn) for _ in range(20)]
            wait_for(lambda: len(healthy.seen) == 20, timeout=5, message="the healthy one lags")
            assert [e.id for e in healthy.seen] == ids
            wait_for(lambda: "did not return within" in (error_of(ctx, "hangs") or ""))
            assert failing.seen == [] and error_of(ctx, "fails").startswith("ConnectionError")
        finally:
            stopping.set()
            for thread in threads:  # a runner waiting on a hung call stops all the same
                thread.join(5)
            alive = [thread.name for thread in threads if thread.is_alive()]
            hanging.release.set()
    assert alive == []
    with ctx.db.connection() as conn:  # stopped runners gave their leases up
        leased = conn.execute(
            "SELECT count(*) AS n FROM observer_positions WHERE leased_by IS NOT NULL"
        ).fetchone()["n"]
    assert leased == 0


def all_positions(ctx) -> set[str]:
    with ctx.db.connection() as conn:
        return {state.observer for state in events_repo.positions(conn)}


def error_of(ctx, name: str) -> str | None:
    with ctx.db.connection() as conn:
        return {s.observer: s.last_error for s in events_repo.positions(conn)}.get(name)


def test_one_worker_at_a_time_consumes_an_observer_and_another_takes_over_after_its_lease(
    ctx, clean
):
    seen_a, seen_b = Recorder("shared"), Recorder("shared")
    worker_a = ObserverRunner(ctx, seen_a, holder="worker-a")
    worker_b = ObserverRunner(ctx, seen_b, holder="worker-b")
    worker_a.step()
    with ctx.db.connection() as conn:
        ids = [record_event(conn) for _ in range(3)]
    settled(ctx, worker_a._position, 3)
    worker_b.step()
    worker_a.step()
    assert [e.id for e in seen_a.seen] == ids and seen_b.seen == []
    # worker a dies without giving the lease up; after the lease, b continues where a stopped
    with ctx.db.connection() as conn:
        later = record_event(conn)
    settled(ctx, worker_a._position, 1)
    assert worker_b.step() > 0 and seen_b.seen == []  # a's lease still runs
    with ctx.db.connection() as conn:
        conn.execute("UPDATE observer_positions SET leased_until = now() - interval '1 second'")
    worker_b.step()
    assert [e.id for e in seen_b.seen] == [later]
    worker_a._renewed_at = float("-inf")  # a comes back: its lease is gone
    assert worker_a.step() > 0 and worker_a._position is None and len(seen_a.seen) == 3


@pytest.mark.unit
def test_the_backoff_schedule_is_capped_at_its_last_step():
    schedule = service.BACKOFF_SECONDS
    assert [service.delay_after(n, schedule) for n in range(1, 9)] == [
        1,
        2,
        5,
        10,
        30,
        60,
        60,
        60,
    ]


@pytest.mark.unit
def test_an_error_is_one_short_line():
    text = service.describe_error(ValueError("line one\nline two " + "x" * 1000))
    assert text.startswith("ValueError: line one line two") and "\n" not in text
    assert len(text) == service.ERROR_LIMIT


NEEDY = """
from paygate import PluginError, hookimpl

paygate_api = ">=1.1,<2"


class Sink:
    name = "needy-sink"

    def observe(self, event):
        pass


@hookimpl
def paygate_register_observers(register, context):
    if not context.config.get("url"):
        raise PluginError("set PAYGATE_PLUGIN_NEEDY_URL to the sink's address")
    register(Sink())
"""


def test_paygate_observers_shows_an_observer_plugin_that_failed_and_exits_1(
    ctx, clean, capsys, tmp_path, monkeypatch
):
    """An installed observer whose registration hook refuses (missing configuration) is not
    "not installed": its failure is shown, and the command fails; configured, it is listed
    (``paygate plugins`` too: the observer it provides)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    module = f"needy_{uuid.uuid4().hex[:8]}"
    fake_distribution(site, "paygate-needy", "0.3", {"needy": module}, {module: NEEDY})
    runner = ObserverRunner(ctx, Recorder("needy-sink"))
    runner.step()  # it ran before, so it has bookkeeping
    assert paygate_main(["observers"]) == 1
    captured = capsys.readouterr()
    assert "needy-sink (not registered: see the failed plugin(s) below)" in captured.out
    assert "no loaded plugin registers it" not in captured.out
    assert "FAILED needy: plugin 'needy' failed in paygate_register_observers: set " in (
        captured.out
    )
    assert "distribution 'paygate-needy' 0.3" in captured.err
    assert "PAYGATE_DISABLE_PLUGINS=needy" in captured.err
    assert paygate_main(["observers", "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert [failure["name"] for failure in shown["failed"]] == ["needy"]
    monkeypatch.setenv("PAYGATE_PLUGIN_NEEDY_URL", "file:///dev/null")
    assert paygate_main(["observers"]) == 0
    captured = capsys.readouterr()
    assert "needy-sink\n" in captured.out and "FAILED" not in captured.out
    assert paygate_main(["plugins"]) == 0
    listed = capsys.readouterr().out
    assert "needy\n    kind:         observer\n    provides:     observer needy-sink\n" in listed
