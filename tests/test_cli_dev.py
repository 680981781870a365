"""The developer CLI without a gateway: argument parsing and usage errors (exit 2), how API
errors map to exit statuses, and --reorder / --delay / --duplicate scheduling with an injected
random source (the e2e test, tests/e2e/test_listen_trigger.py, runs them against a gateway)."""

from __future__ import annotations

import os
import random
import signal

import pytest

from paygate import cli, devcli, devlisten
from paygate.config import Settings
from paygate.devlisten import REORDER_HOLD, REORDER_WINDOW, Listener, Options
from paygate_client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    InvalidRequestError,
    ServiceUnavailableError,
)
from paygate_client.models import FeedEvent


def parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_listen_options_parse():
    args = parse(
        "listen",
        "--forward-to",
        "http://127.0.0.1:5000/hooks",
        "--events",
        "payment.success, refund.*",
        "--duplicate",
        "--delay",
        "0.5-3",
        "--json",
    )
    assert args.forward_to == "http://127.0.0.1:5000/hooks"
    assert args.events == ("payment.success", "refund.*")
    assert (args.duplicate, args.reorder, args.delay, args.interval) == (True, False, (0.5, 3), 0.5)
    assert args.json and args.func is devlisten.cmd_listen
    assert parse("listen", "--forward-to", "https://h/x", "--delay", "2").delay == (2.0, 2.0)


@pytest.mark.parametrize(
    "argv, complaint",
    [
        (["listen"], "--forward-to"),
        (["listen", "--forward-to", "ftp://h/x"], "not an http(s) URL"),
        (["listen", "--forward-to", "http://h/x", "--events", "order.*"], "matches no event"),
        (["listen", "--forward-to", "http://h/x", "--delay", "3-1"], "not a delay"),
        (["listen", "--forward-to", "http://h/x", "--interval", "0"], "not an interval"),
        (["trigger", "payment.refunded"], "refund.processed"),  # the list of events
        (["trigger", "payment.success", "--amount", "0"], "not a whole number"),
        (["refunds", "create", "pay_x"], "--amount"),
        (["payments", "list", "--status", "paid"], "invalid choice"),
        (["payments"], "required"),
        # What the gateway would refuse is refused here first: a usage error, not status 1.
        (["payments", "list", "--limit", "500"], "--limit: not a whole number 1-100"),
        (["payments", "list", "--limit", "0"], "not a whole number 1-100"),
        (["payments", "list", "--offset", "-1"], "--offset: not a whole number 0-10000000"),
        (["payments", "list", "--from", "yesterday"], "--from: not a moment: 'yesterday'"),
        (["payments", "list", "--to", "2024-13-01"], "--to: not a moment"),
        (["payments", "list", "--amount-min", "-1"], "not a whole number 0-100000000000"),
    ],
)
def test_usage_errors_exit_2_and_say_why(argv, complaint, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    assert complaint in capsys.readouterr().err


def test_moments_and_bounds_the_api_takes_pass_as_written():
    args = parse("payments", "list", "--from", "2024-01-15", "--to", "1705312800", "--limit", "100")
    assert (args.from_, args.to, args.limit, args.offset) == ("2024-01-15", "1705312800", 100, 0)
    assert parse("payments", "list", "--from", "2024-01-15T10:30:00Z").from_ == (
        "2024-01-15T10:30:00Z"
    )


def test_amount_min_above_amount_max_is_a_usage_error_before_any_request(capsys):
    # Nothing listens on port 9: a request would be status 3, not 2.
    argv = ["payments", "list", "--amount-min", "200", "--amount-max", "100"]
    assert cli.main([*argv, "--api-url", "http://127.0.0.1:9"]) == 2
    assert "--amount-min is above --amount-max" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["payments", "--json", "--api-url", "http://g", "list"],
        ["payments", "list", "--json", "--api-url", "http://g"],
        ["payments", "--json", "get", "pay_x", "--api-url", "http://g"],
        ["refunds", "--json", "--api-url", "http://g", "create", "pay_x", "--amount", "100"],
    ],
)
def test_common_options_work_before_and_after_the_action(argv):
    args = parse(*argv)
    assert (args.json, args.api_url) == (True, "http://g")
    assert args.api_key is None  # not given anywhere: the environment's or the test merchant's


def test_common_options_after_the_action_win_and_default_to_off():
    assert parse("payments", "--api-url", "http://a", "list", "--api-url", "http://b").api_url == (
        "http://b"
    )
    plain = parse("payments", "list")
    assert (plain.json, plain.api_url, plain.api_secret) == (False, None, None)


PAID = {
    "id": "pay_AAAAAAAAAAAAAAAA",
    "order_id": "order_BBBBBBBBBBBBBBBB",
    "amount": 50000,
    "currency": "INR",
    "method": "upi",
    "vpa": "success@test",
    "status": "success",
    "captured": True,
    "amount_captured": 40000,
    "capture_status": "success",
    "amount_refunded": 15000,
    "error_code": None,
    "processor_reference": "test_ref_123",
    "routing": {"processor": "backup", "decided_by": "merchant", "candidates": ["backup"]},
    "created_at": "2026-12-06T00:00:00Z",
}


def test_payments_get_shows_capture_refunds_processor_and_the_buyers_next_action():
    text = "\n".join(devcli.payment_lines(PAID))
    for line in (
        "amount:                    ₹500.00",
        "captured:                  True",
        "amount_captured:           ₹400.00",
        "capture_status:            success",
        "amount_refunded:           ₹150.00",
        "processor:                 backup",
        "processor_reference:       test_ref_123",
    ):
        assert line in text.splitlines(), (line, text)
    assert "error_code" not in text and "next_action" not in text  # null or absent: left out
    pending = {
        **PAID,
        "status": "pending",
        "next_action": {"type": "redirect", "url": "http://x/3ds"},
    }
    assert "next_action:               http://x/3ds" in devcli.payment_lines(pending)


def test_the_payments_table_shows_what_was_refunded():
    from paygate_client.models import Payment

    row = devcli.payment_row(Payment.from_dict(PAID))
    assert dict(zip(devcli.PAYMENT_COLUMNS, row, strict=True))["refunded"] == "₹150.00"
    untouched = devcli.payment_row(Payment.from_dict({**PAID, "amount_refunded": 0}))
    assert dict(zip(devcli.PAYMENT_COLUMNS, untouched, strict=True))["refunded"] == "-"


def test_sigterm_and_sighup_stop_listen_as_ctrl_c_does_and_an_ignored_one_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        previous = devlisten.catch_stop_signals()
        assert set(previous) == {signal.SIGTERM}  # SIGHUP ignored (nohup): left so
        with pytest.raises(devlisten.Stopped) as stop:
            os.kill(os.getpid(), signal.SIGTERM)
        assert stop.value.signum == signal.SIGTERM
        signal.signal(signal.SIGTERM, previous[signal.SIGTERM])
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        previous = devlisten.catch_stop_signals()
        with pytest.raises(devlisten.Stopped) as stop:
            os.kill(os.getpid(), signal.SIGHUP)
        assert stop.value.signum == signal.SIGHUP
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.signal(signal.SIGHUP, before)


def test_help_names_the_defaults_exit_codes_and_examples(capsys):
    for argv in (["listen"], ["trigger"], ["payments", "list"], ["refunds", "create"]):
        with pytest.raises(SystemExit) as stop:
            cli.main([*argv, "--help"])
        assert stop.value.code == 0
        text = capsys.readouterr().out
        assert "key_test_abc123" in text and "PAYGATE_API_URL" in text
        assert "130 Ctrl-C" in text and "example" in text


def test_api_errors_map_to_exit_statuses(capsys):
    cases = [
        (AuthenticationError("AUTHENTICATION_ERROR", "Invalid API credentials", 401), 1),
        (InvalidRequestError("BAD_REQUEST_ERROR", "amount must be at least 100", 400), 1),
        (APIConnectionError("CONNECTION_ERROR", "no answer from http://localhost:8000"), 3),
        (ServiceUnavailableError("SERVICE_UNAVAILABLE", "retry later", 503), 3),
        (APIError("SERVER_ERROR", "Internal server error", 500), 3),
    ]
    for error, code in cases:
        assert devcli.report(error) == code
    err = capsys.readouterr().err
    assert "paygate: BAD_REQUEST_ERROR: amount must be at least 100 (HTTP 400)" in err
    assert "paygate: cannot reach the gateway: no answer from http://localhost:8000" in err


def test_credentials_come_from_options_then_environment_then_the_test_merchant():
    args = parse("payments", "list")
    client = devcli.client_for(args, Settings.from_env({}))
    assert (client.api_key, client.base_url) == ("key_test_abc123", "http://localhost:8000")
    env = {
        "PAYGATE_API_KEY": "key_live_a",
        "PAYGATE_API_SECRET": "secret_live_zzz",
        "PAYGATE_API_URL": "http://g/",
    }
    client = devcli.client_for(args, Settings.from_env(env))
    assert (client.api_key, client.base_url) == ("key_live_a", "http://g")
    assert "secret_live_zzz" not in repr(Settings.from_env(env)) + repr(client)
    args = parse("payments", "list", "--api-key", "key_b", "--api-url", "http://h")
    client = devcli.client_for(args, Settings.from_env(env))
    assert (client.api_key, client.base_url) == ("key_b", "http://h")


# -- --reorder, --delay, --duplicate ------------------------------------------------------------


def event(n: int) -> FeedEvent:
    return FeedEvent(
        id=f"evt_{n}",
        event="payment.success",
        created_at=None,
        headers={"webhook-id": f"evt_{n}"},
        body="{}",
    )


def ids(scheduled) -> list[str]:
    return [s.item.id for s in scheduled]


def test_reorder_holds_a_short_window_then_shuffles_with_the_given_random_source():
    options = Options("http://h/x", reorder=True)
    listener = Listener(None, options, rng=random.Random(7), post=lambda *a, **k: None)
    listener.accept([event(1), event(2)], now=0.0)
    listener.accept([event(3), event(4), event(5)], now=0.4)  # the next poll, same window
    assert listener.due(0.4) == [] and len(listener.held) == 5
    listener.release_held(REORDER_WINDOW - 0.01)
    assert listener.due(REORDER_WINDOW) == []  # the window has not ended
    listener.release_held(REORDER_WINDOW)
    expected = [f"evt_{n}" for n in range(1, 6)]
    random.Random(7).shuffle(expected)
    assert ids(listener.due(REORDER_WINDOW)) == expected != sorted(expected)
    # A full hold goes at once, without waiting out the window.
    listener.accept([event(n) for n in range(REORDER_HOLD)], now=5.0)
    assert len(listener.due(5.0)) == REORDER_HOLD and listener.held == []


def test_without_reorder_events_go_in_order_at_once():
    listener = Listener(None, Options("http://h/x"), rng=random.Random(1), post=print)
    listener.accept([event(1), event(2), event(3)], now=1.0)
    assert ids(listener.due(1.0)) == ["evt_1", "evt_2", "evt_3"]


def test_delay_and_duplicate_schedule_each_copy_on_its_own_draw():
    options = Options("http://h/x", duplicate=True, delay=(1.0, 3.0))
    listener = Listener(None, options, rng=random.Random(42), post=print)
    listener.accept([event(1), event(2)], now=10.0)
    draws = random.Random(42)
    planned = [
        (10.0 + draws.uniform(1.0, 3.0), f"evt_{n}", copy) for n in (1, 2) for copy in (1, 2)
    ]
    assert listener.due(10.99) == []
    out = listener.due(13.0)
    assert [(s.due, s.item.id, s.copy) for s in out] == sorted(planned)
    assert all(11.0 <= s.due <= 13.0 for s in out)
    fixed = Listener(None, Options("http://h/x", delay=(2.0, 2.0)), post=print)
    fixed.accept([event(1)], now=0.0)
    assert fixed.next_wake(0.0, next_poll=5.0) == 2.0  # the loop sleeps until it is due
    assert fixed.due(1.99) == [] and ids(fixed.due(2.0)) == ["evt_1"]


def test_a_delivery_line_shows_event_id_status_and_the_start_of_the_answer():
    line = devlisten.describe(
        {
            "time": "2024-01-15T10:31:00Z",
            "event": "payment.success",
            "id": "evt_1",
            "duplicate": True,
            "status": 500,
            "reason": "Internal Server Error",
            "body": "x" * 500,
        }
    )
    assert line.startswith("2024-01-15T10:31:00Z  payment.success")
    assert "evt_1 (duplicate)  -> 500 Internal Server Error  xxx" in line and line.endswith("...")
    failed = devlisten.describe(
        {
            "time": "t",
            "event": "refund.processed",
            "id": "e",
            "duplicate": False,
            "status": None,
            "error": "ConnectionError: refused",
        }
    )
    assert failed.endswith("-> failed: ConnectionError: refused")
