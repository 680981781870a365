"""Routing and fallback (issue 17) against the real database: a router plugin routing by method,
the merchant's fallback list at creation (tokenize unreachable) and in the worker (charge
unreachable), what is skipped and why, the ``routing`` record in the API, and the one WARNING
line of an expected outage."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pytest

from paygate import (
    BadRequest,
    ChargeResult,
    ProcessorUnreachable,
    Route,
    TokenizeRequest,
    TokenResult,
    hookimpl,
)
from paygate.config import TEST_MERCHANT_ID
from paygate.db import payments as payments_repo
from paygate.jobs.worker import ProcessorOutageFilter
from paygate.services import merchants, payments, routing
from paygate.testing import register_plugin
from tests.fixtures import AUTH
from tests.plugins.helpers import ProvidesProcessors, ScriptedBank, create_order, create_payment

CARD = {"number": "4111111111111111", "expiry_month": "12", "expiry_year": "99", "cvv": "123"}


@dataclass
class Tokenizer(ScriptedBank):
    """A processor with ``tokenize``: ``tokens`` is its script (an Exception is raised)."""

    tokens: list = None  # type: ignore[assignment]

    def tokenize(self, request: TokenizeRequest) -> TokenResult:
        self.calls.append(f"tokenize {request.idempotency_key}")
        return self._next(self.tokens or [TokenResult.ok(f"tok_{self.name}")])


class ByMethod:
    """The tests' example router: UPI to one processor, cards to another (each with the
    merchant's route after it as the fallback)."""

    def __init__(self, upi: str, card: str):
        self.upi, self.card = upi, card
        self.seen: list = []

    @hookimpl
    def paygate_route_payment(self, request, context):
        self.seen.append((request, context))
        first = self.upi if request.method == "upi" else self.card
        rest = tuple(name for name in request.default if name != first)
        return Route((first, *rest), reason=f"{request.method} goes to {first}")


class Broken:
    @hookimpl
    def paygate_route_payment(self, request):
        raise RuntimeError("router bug")


def row(ctx, payment_id: str) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT status, processor, routing, charge_acknowledged, "
            "next_check_at - now() AS due_in FROM payments WHERE id = %s",
            (payment_id,),
        ).fetchone()


def make_due(ctx, payment_id: str) -> None:
    with ctx.db.connection() as conn:
        conn.execute("UPDATE payments SET next_check_at = now() WHERE id = %s", (payment_id,))


def payment_count(ctx) -> int:
    with ctx.db.connection() as conn:
        return conn.execute("SELECT count(*) AS n FROM payments").fetchone()["n"]


def steps(record: dict) -> list[tuple[str, str, str]]:
    return [(a["processor"], a["stage"], a["outcome"]) for a in record["attempts"]]


# -- a router plugin ------------------------------------------------------------------------


def test_a_router_plugin_routes_by_method_and_the_api_shows_why(ctx, api):
    upibank, cardbank = ScriptedBank(name="upibank"), ScriptedBank(name="cardbank")
    router = ByMethod(upi="upibank", card="cardbank")
    with (
        register_plugin(ctx, ProvidesProcessors(upibank, cardbank)),
        register_plugin(ctx, router, name="bymethod"),
    ):
        upi = create_payment(api)
        card = create_payment(api, method="card", card=CARD)
        assert (upi.status_code, card.status_code) == (201, 201)
        assert upi.json["routing"] == {
            "processor": "upibank",
            "decided_by": "router:bymethod",
            "reason": "upi goes to upibank",
            "candidates": ["upibank", "test"],
            "attempts": [],
        }
        assert card.json["routing"]["processor"] == "cardbank"
        assert payments.process(ctx, upi.json["id"]) == "success"
        assert payments.process(ctx, card.json["id"]) == "success"
        shown = api.simulate_get(f"/api/v1/payments/{card.json['id']}", headers=AUTH).json
    assert shown["routing"]["decided_by"] == "router:bymethod" and shown["status"] == "success"
    assert upibank.calls == [f"charge {upi.json['id']}"]
    assert cardbank.calls == [f"charge {card.json['id']}"]
    request, context = router.seen[1]
    assert (request.method, request.card_network, request.default) == ("card", "visa", ("test",))
    assert request.merchant_id == TEST_MERCHANT_ID and request.amount == 50000
    assert context.plugin == "bymethod"


def test_the_public_checkout_view_never_names_processors(ctx, api):
    order = create_order(api)
    made = api.simulate_post(
        "/api/v1/payments/public",
        json={"order_id": order["id"], "method": "upi", "vpa": "user@paytm"},
    )
    assert made.status_code == 201 and "routing" not in made.json
    public = api.simulate_get(f"/api/v1/payments/{made.json['id']}/public")
    assert public.status_code == 200 and "routing" not in public.json
    merchant_view = api.simulate_get(f"/api/v1/payments/{made.json['id']}", headers=AUTH).json
    assert merchant_view["routing"]["decided_by"] == "merchant"


def test_a_failing_router_is_logged_and_the_merchants_route_is_used(ctx, api, caplog):
    with (
        register_plugin(ctx, Broken(), name="broken"),
        caplog.at_level(logging.ERROR, logger="paygate.services.routing"),
    ):
        made = create_payment(api)
    assert made.status_code == 201, made.text
    assert made.json["routing"]["processor"] == "test"
    assert made.json["routing"]["decided_by"] == "merchant"
    assert "router failed (RuntimeError)" in made.json["routing"]["reason"]
    assert any("router failed" in r.getMessage() for r in caplog.records)


def test_a_routers_candidates_that_cannot_take_the_payment_are_skipped_and_recorded(ctx, api):
    upionly = ScriptedBank(name="upionly", methods=frozenset({"upi"}))
    router = ByMethod(upi="upionly", card="upionly")
    with (
        register_plugin(ctx, ProvidesProcessors(upionly)),
        register_plugin(ctx, router, name="bymethod"),
    ):
        made = create_payment(api, method="card", card=CARD)
    assert made.status_code == 201, made.text
    record = made.json["routing"]
    assert record["processor"] == "test"
    assert steps(record) == [("upionly", "route", "skipped")]
    assert record["attempts"][0]["reason"] == "Payment method card is not supported"


# -- the merchant's fallback list -----------------------------------------------------------


def test_fallback_processors_are_set_checked_and_cleared(ctx):
    with register_plugin(ctx, ProvidesProcessors(ScriptedBank(name="b"), ScriptedBank(name="c"))):
        merchant = merchants.set_processor(ctx, TEST_MERCHANT_ID, "test", ["b", "c"])
        assert merchant.fallback_processors == ("b", "c")
        assert merchants.set_processor(ctx, TEST_MERCHANT_ID, "b").fallback_processors == (
            "b",
            "c",
        )  # None keeps the list
        for wrong, message in [
            (["nosuch"], "Unknown processor 'nosuch'"),
            (["c", "c"], "Fallback processor 'c' is listed twice"),
            (["test"], "Fallback processor 'test' is the merchant's processor already"),
        ]:
            with pytest.raises(BadRequest, match=re.escape(message)) as raised:
                merchants.set_processor(ctx, TEST_MERCHANT_ID, "test", wrong)
            assert raised.value.field == "fallback_processors"
        cleared = merchants.set_processor(ctx, TEST_MERCHANT_ID, "test", [])
    assert cleared.fallback_processors == ()
    assert merchants.get(ctx, TEST_MERCHANT_ID).fallback_processors == ()


def test_tokenize_unreachable_at_creation_falls_back_to_the_next_processor(ctx, api):
    down = Tokenizer(name="downbank", tokens=[ProcessorUnreachable("connection refused")])
    with register_plugin(ctx, ProvidesProcessors(down)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["test"])
        made = create_payment(api)
        assert made.status_code == 201, made.text
        assert payments.process(ctx, made.json["id"]) == "success"
    record = made.json["routing"]
    assert record["processor"] == "test" and record["candidates"] == ["downbank", "test"]
    assert steps(record) == [("downbank", "tokenize", "unreachable")]
    assert record["attempts"][0]["reason"] == "connection refused"
    assert row(ctx, made.json["id"])["processor"] == "test"


def test_when_every_candidate_is_unreachable_the_answer_stays_503_and_nothing_is_written(ctx, api):
    a = Tokenizer(name="a", tokens=[ProcessorUnreachable("down")])
    b = Tokenizer(name="b", tokens=[TimeoutError("slow")])
    with register_plugin(ctx, ProvidesProcessors(a, b)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "a", ["b"])
        made = create_payment(api)
    assert made.status_code == 503, made.text
    assert made.json["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert payment_count(ctx) == 0
    assert a.calls and b.calls


def test_a_tokenize_refusal_is_an_answer_not_an_outage(ctx, api):
    refuses = Tokenizer(name="refuses", tokens=[TokenResult.refused("CARD_DECLINED", "No")])
    other = Tokenizer(name="other")
    with register_plugin(ctx, ProvidesProcessors(refuses, other)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "refuses", ["other"])
        made = create_payment(api)
    assert made.status_code == 400 and made.json["error"]["reason"] == "CARD_DECLINED"
    assert other.calls == [] and payment_count(ctx) == 0


def test_the_single_processor_messages_are_unchanged_when_the_fallback_cannot_help(ctx, api):
    upionly = ScriptedBank(name="upionly", methods=frozenset({"upi"}))
    alsoupi = ScriptedBank(name="alsoupi", methods=frozenset({"upi"}))
    with register_plugin(ctx, ProvidesProcessors(upionly, alsoupi)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "upionly", ["alsoupi"])
        made = create_payment(api, method="card", card=CARD)
    assert made.status_code == 400
    assert made.json["error"]["description"] == "Payment method card is not supported"
    assert payment_count(ctx) == 0


def test_charge_unreachable_moves_the_payment_to_the_next_processor_once(ctx, api, caplog):
    down = ScriptedBank(name="downbank", charges=[ProcessorUnreachable("bank refused")])
    needs_card = Tokenizer(name="needscard")
    backup = ScriptedBank(name="backup")
    with register_plugin(ctx, ProvidesProcessors(down, needs_card, backup)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["needscard", "backup"])
        # A card: its details are not stored, so a processor with tokenize cannot take it.
        payment_id = create_payment(api, method="card", card=CARD).json["id"]
        with caplog.at_level(logging.INFO, logger="paygate.services.payments"):
            assert payments.process(ctx, payment_id) == "rerouted"
        moved = row(ctx, payment_id)
        assert (moved["status"], moved["processor"]) == ("pending", "backup")
        assert moved["due_in"].total_seconds() <= 0  # due now
        assert payments.process(ctx, payment_id) == "success"
        assert payments.process(ctx, payment_id) == "skipped"
        shown = api.simulate_get(f"/api/v1/payments/{payment_id}", headers=AUTH).json
    record = shown["routing"]
    assert record["processor"] == "backup"
    assert steps(record) == [
        ("downbank", "charge", "unreachable"),
        ("needscard", "charge", "skipped"),
    ]
    assert record["attempts"][1]["reason"] == routing.NEEDS_CARD_AGAIN
    assert down.calls == [f"charge {payment_id}"] and needs_card.calls == []
    assert backup.calls == [f"charge {payment_id}"]
    (line,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert payment_id in line.getMessage() and "moved to backup" in line.getMessage()


def test_a_switch_is_one_guarded_update_so_a_second_run_changes_nothing(ctx, api):
    payment_id = create_payment(api).json["id"]
    record = {"processor": "b", "candidates": ["test", "b"], "attempts": []}
    with ctx.db.connection() as conn:
        assert payments_repo.switch_processor(conn, payment_id, "test", "b", record)
        assert not payments_repo.switch_processor(conn, payment_id, "test", "c", record)
        conn.execute("UPDATE payments SET charge_acknowledged = TRUE WHERE id = %s", (payment_id,))
        assert not payments_repo.switch_processor(conn, payment_id, "b", "c", record)
    assert row(ctx, payment_id)["processor"] == "b"


def test_with_no_processor_left_the_outage_is_retried_with_one_warning_line(ctx, api, caplog):
    down = ScriptedBank(
        name="downbank",
        charges=[ProcessorUnreachable("bank down", retry_after=42), ChargeResult.success()],
    )
    with register_plugin(ctx, ProvidesProcessors(down)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank")
        payment_id = create_payment(api).json["id"]
        with caplog.at_level(logging.INFO):
            assert payments.process(ctx, payment_id) == "deferred"
        waiting = row(ctx, payment_id)
        assert (waiting["status"], waiting["processor"]) == ("pending", "downbank")
        assert not waiting["charge_acknowledged"]
        assert 37 < waiting["due_in"].total_seconds() <= 42  # the processor's retry_after
        make_due(ctx, payment_id)
        assert payments.process(ctx, payment_id) == "success"
    (line,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = line.getMessage()
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert payment_id in message and "downbank unreachable (bank down)" in message
    assert re.search(r"next attempt at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 42 s\)", message)
    record = row(ctx, payment_id)["routing"]
    assert steps(record) == [("downbank", "charge", "unreachable")]


def test_repeated_outages_count_in_one_attempt_entry(ctx, api):
    down = ScriptedBank(name="downbank", charges=[ProcessorUnreachable("bank down")])
    with register_plugin(ctx, ProvidesProcessors(down)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank")
        payment_id = create_payment(api).json["id"]
        for _ in range(3):
            make_due(ctx, payment_id)
            assert payments.process(ctx, payment_id) == "deferred"
    (attempt,) = row(ctx, payment_id)["routing"]["attempts"]
    assert attempt["times"] == 3 and attempt["last_at"] >= attempt["at"]


def test_an_ordinary_exception_keeps_todays_semantics_and_never_falls_back(ctx, api):
    flaky = ScriptedBank(name="flaky", charges=[ConnectionError("reset after sending")])
    backup = ScriptedBank(name="backup")
    with register_plugin(ctx, ProvidesProcessors(flaky, backup)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "flaky", ["backup"])
        payment_id = create_payment(api).json["id"]
        assert payments.process(ctx, payment_id) == "deferred"
    assert row(ctx, payment_id)["processor"] == "flaky" and backup.calls == []


def test_the_worker_filter_turns_a_refund_jobs_outage_into_one_warning_line():
    logger = logging.getLogger("tests.routing.outage")
    try:
        raise ProcessorUnreachable("bank down")
    except ProcessorUnreachable:
        record = logger.makeRecord(
            logger.name,
            logging.ERROR,
            __file__,
            1,
            "processor error for refund %s (attempt %d)",
            ("rfnd_1", 3),
            __import__("sys").exc_info(),
        )
    assert ProcessorOutageFilter().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert re.fullmatch(
        r"processor error for refund rfnd_1 \(attempt 3\): processor unreachable \(bank down\); "
        r"next attempt at \S+Z \(in 5 s\)",
        record.getMessage(),
    )
    other = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "x", (), None)
    assert ProcessorOutageFilter().filter(other) and other.levelno == logging.ERROR


def test_paygate_merchants_set_processor_sets_and_clears_the_fallback_list(ctx, tmp_path):
    from tests.plugins.helpers import TINYBANK, fake_distribution
    from tests.plugins.test_loading import paygate_cli, unique

    module = unique("tinybank")
    site = fake_distribution(
        tmp_path, "paygate-tinybank", "1.0", {"tinybank": module}, {module: TINYBANK}
    )
    done = paygate_cli(
        "merchants",
        "set-processor",
        "test@example.com",
        "test",
        "--fallback",
        "tinybank",
        site=site,
    )
    assert done.returncode == 0, done.stderr
    assert "now routes new payments to test, then tinybank when unavailable" in done.stdout
    assert merchants.get(ctx, TEST_MERCHANT_ID).fallback_processors == ("tinybank",)
    shown = paygate_cli("merchants", "show", TEST_MERCHANT_ID, site=site)
    assert "fallback:  tinybank" in shown.stdout
    kept = paygate_cli("merchants", "set-processor", TEST_MERCHANT_ID, "test", site=site)
    assert kept.returncode == 0 and "then tinybank" in kept.stdout  # no --fallback: kept
    wrong = paygate_cli("merchants", "set-processor", TEST_MERCHANT_ID, "test", "--fallback", "x,")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert wrong.stderr.strip().splitlines()[-1].startswith("paygate: Unknown processor 'x'")
    cleared = paygate_cli("merchants", "set-processor", TEST_MERCHANT_ID, "test", "--fallback", "")
    assert cleared.returncode == 0, cleared.stderr
    assert merchants.get(ctx, TEST_MERCHANT_ID).fallback_processors == ()
