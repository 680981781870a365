"""Routing and fallback, the operator trial's findings (issue 17): the tokenize line gives no
verdict when a fallback may follow and creation logs the outcome; a fallback processor without
its required settings is refused (service, CLI, dashboard form); ``attempts`` records every
candidate skipped or unreachable, in the order considered; reasons carry no "unreachable:"
prefix; at charge time a UPI payment's stored VPA is tokenized for a fallback processor with
``tokenize`` (a card's details are not stored: skipped). Real database, real worker path
through the services, real CLI subprocess."""

from __future__ import annotations

import logging
import re
import uuid

import pytest

from paygate import BadRequest, ProcessorUnreachable, TokenResult
from paygate.config import TEST_MERCHANT_ID
from paygate.db import payments as repo
from paygate.services import merchants, payments, processor_configs, routing
from paygate.testing import register_plugin
from paygate.web.dashboard.app import create_app
from tests.dashboard_client import DashboardClient, by_test_id
from tests.fixtures import AUTH
from tests.plugins.helpers import (
    ProvidesProcessors,
    ScriptedBank,
    create_payment,
    fake_distribution,
)
from tests.test_processor_configs import Vaultbank
from tests.test_processor_configs_cli import VAULTBANK, paygate
from tests.test_routing_fallback import CARD, ByMethod, Tokenizer, payment_count, row, steps

MESSAGE = (
    "Fallback processor 'vault' needs these settings for merchant test@example.com: "
    "merchant_code, api_key (set them first with `paygate processors configure "
    "test@example.com vault merchant_code=... api_key=...`)"
)


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- 1. the tokenize line leaves the verdict to creation's final line ---------------------------


def test_a_tokenize_outage_followed_by_a_fallback_never_says_not_created(ctx, api, caplog):
    down = Tokenizer(name="downbank", tokens=[ProcessorUnreachable("connection refused")])
    with register_plugin(ctx, ProvidesProcessors(down)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["test"])
        with caplog.at_level(logging.INFO, logger="paygate"):
            made = create_payment(api)
    assert made.status_code == 201, made.text
    lines = warnings_of(caplog)
    assert not any("not created" in line for line in lines), lines
    payment_id = made.json["id"]
    assert lines == [
        f"tokenize by processor downbank for payment {payment_id}: unreachable "
        "(connection refused)",
        f"payment {payment_id} routed to test after 1 skipped or unreachable processor(s)",
    ]


def test_when_every_candidate_is_unreachable_creation_logs_the_503_verdict(ctx, api, caplog):
    a = Tokenizer(name="a", tokens=[ProcessorUnreachable("down")])
    b = Tokenizer(name="b", tokens=[ProcessorUnreachable("also down")])
    with register_plugin(ctx, ProvidesProcessors(a, b)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "a", ["b"])
        with caplog.at_level(logging.INFO, logger="paygate"):
            made = create_payment(api)
    assert made.status_code == 503
    *tokenize_lines, verdict = warnings_of(caplog)
    assert len(tokenize_lines) == 2 and not any("not created" in t for t in tokenize_lines)
    assert re.fullmatch(
        r"payment pay_\w+ not created: no processor of its route could take it "
        r"\(2 unreachable, 0 skipped\): answered 503",
        verdict,
    )


# -- 2. a fallback without its required settings is refused -------------------------------------


def test_a_fallback_lacking_required_settings_is_refused_until_they_are_set(ctx):
    with register_plugin(ctx, ProvidesProcessors(Vaultbank())):
        with pytest.raises(BadRequest) as raised:
            merchants.set_processor(ctx, TEST_MERCHANT_ID, "test", ["vault"])
        assert raised.value.description == MESSAGE
        assert raised.value.field == "fallback_processors"
        assert merchants.get(ctx, TEST_MERCHANT_ID).fallback_processors == ()
        processor_configs.set_values(
            ctx,
            TEST_MERCHANT_ID,
            "vault",
            {"merchant_code": "mid_1", "api_key": "sk_1"},
            actor="test",
        )
        merchant = merchants.set_processor(ctx, TEST_MERCHANT_ID, "test", ["vault"])
    assert merchant.fallback_processors == ("vault",)


def test_the_cli_refuses_a_fallback_lacking_settings_like_the_main_processor(ctx, tmp_path):
    site = tmp_path / "site"
    module = f"vaultbank_{uuid.uuid4().hex[:8]}"
    fake_distribution(site, "paygate-vaultbank", "1.0", {"vaultbank": module}, {module: VAULTBANK})
    refused = paygate(
        site, "merchants", "set-processor", "test@example.com", "test", "--fallback", "vault"
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == f"paygate: {MESSAGE}"
    merchants.forget_cached()
    assert merchants.get(ctx, TEST_MERCHANT_ID).fallback_processors == ()
    configured = paygate(
        site,
        "processors",
        "configure",
        "test@example.com",
        "vault",
        "merchant_code=mid_Cli",
        "api_key=sk_cli_1",
    )
    assert configured.returncode == 0, configured.stderr
    routed = paygate(
        site, "merchants", "set-processor", "test@example.com", "test", "--fallback", "vault"
    )
    assert routed.returncode == 0, routed.stderr
    assert "then vault when unavailable" in routed.stdout


def test_the_dashboards_fallback_form_shows_the_refusal_and_keeps_the_input(ctx):
    with register_plugin(ctx, ProvidesProcessors(Vaultbank())):
        client = DashboardClient(create_app(ctx))
        client.login()
        client.get("/dashboard/processor")
        page = client.post("/dashboard/processor", {"action": "fallback", "fallback": "vault"})
        assert page.status_code == 400
        found = by_test_id(page.text)
        assert found["processor-fallback-error"][0].text == MESSAGE
        assert 'value="vault"' in page.text
    assert merchants.get(ctx, TEST_MERCHANT_ID).fallback_processors == ()


# -- 3. attempts: every candidate skipped or unreachable, in the order considered ---------------


def test_route_skips_of_later_candidates_are_recorded_and_never_tried_at_charge(ctx, api):
    down = ScriptedBank(name="downbank", charges=[ProcessorUnreachable("bank refused")])
    upionly = ScriptedBank(name="upionly", methods=frozenset({"upi"}))
    router = ByMethod(upi="upionly", card="downbank")
    with (
        register_plugin(ctx, ProvidesProcessors(down, upionly)),
        register_plugin(ctx, router, name="bymethod"),
    ):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "test", ["upionly"])
        made = create_payment(api, method="card", card=CARD)
        assert made.status_code == 201, made.text
        record = made.json["routing"]
        assert record["candidates"] == ["downbank", "test", "upionly"]
        assert record["processor"] == "downbank"
        assert steps(record) == [("upionly", "route", "skipped")]
        assert payments.process(ctx, made.json["id"]) == "deferred"
    record = row(ctx, made.json["id"])["routing"]
    # upionly is not asked again (its route skip says why); test needs the card again.
    assert steps(record) == [
        ("upionly", "route", "skipped"),
        ("downbank", "charge", "unreachable"),
        ("test", "charge", "skipped"),
    ]
    assert record["attempts"][2]["reason"] == "needs the card details again (not stored)"
    assert upionly.calls == []


# -- 4. reasons carry no "unreachable:" prefix --------------------------------------------------


def test_reasons_have_no_unreachable_prefix_in_the_record_or_the_503(ctx, api):
    down = Tokenizer(name="downbank", tokens=[ProcessorUnreachable("connection refused")])
    with register_plugin(ctx, ProvidesProcessors(down)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["test"])
        routed = create_payment(api)
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", [])
        refused = create_payment(api)
    (attempt,) = routed.json["routing"]["attempts"]
    assert (attempt["stage"], attempt["outcome"]) == ("tokenize", "unreachable")
    assert attempt["reason"] == "connection refused"
    assert refused.status_code == 503
    assert refused.json["error"]["reason"] == "connection refused"


# -- 5. charge-time fallback with tokenize: a UPI payment's VPA is stored ----------------------


def test_a_upi_payment_whose_charge_is_unreachable_settles_through_the_test_processor(ctx, api):
    down = ScriptedBank(name="downbank", charges=[ProcessorUnreachable("bank refused")])
    with register_plugin(ctx, ProvidesProcessors(down)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["test"])
        made = create_payment(api, method="upi", vpa="success@test")
        payment_id = made.json["id"]
        assert payments.process(ctx, payment_id) == "rerouted"
        moved = row(ctx, payment_id)
        assert (moved["status"], moved["processor"]) == ("pending", "test")
        assert payments.process(ctx, payment_id) == "success"
        assert payments.process(ctx, payment_id) == "skipped"
    with ctx.db.connection() as conn:
        stored = conn.execute(
            "SELECT status, processor, method_token FROM payments WHERE id = %s", (payment_id,)
        ).fetchone()
    assert stored["processor"] == "test"
    assert stored["method_token"].startswith("tok_test_")
    shown = api.simulate_get(f"/api/v1/payments/{payment_id}", headers=AUTH).json
    assert shown["status"] == "success" and shown["routing"]["processor"] == "test"
    assert steps(shown["routing"]) == [("downbank", "charge", "unreachable")]
    assert down.calls == [f"charge {payment_id}"]


def test_a_second_run_after_the_switch_changes_nothing(ctx, api):
    down = ScriptedBank(name="downbank", charges=[ProcessorUnreachable("bank refused")])
    with register_plugin(ctx, ProvidesProcessors(down)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["test"])
        payment_id = create_payment(api).json["id"]
        payment = payments.get(ctx, None, payment_id)
        record = routing.add_attempt(
            routing.record_of(payment), "downbank", "charge", "unreachable", "bank refused"
        )
        first = routing.fallback_for(ctx, payment, record)
        second = routing.fallback_for(ctx, payment, record)
        assert first.processor == second.processor == "test"
        assert first.token != second.token  # each run tokenized; one UPDATE wins
        with ctx.db.connection() as conn:
            assert repo.switch_processor(
                conn, payment_id, "downbank", "test", first.record, first.token
            )
            assert not repo.switch_processor(
                conn, payment_id, "downbank", "test", second.record, second.token
            )
        with ctx.db.connection() as conn:
            token = conn.execute(
                "SELECT method_token FROM payments WHERE id = %s", (payment_id,)
            ).fetchone()["method_token"]
    assert token == first.token


def test_a_fallbacks_tokenize_refusal_or_outage_passes_to_the_next_candidate(ctx, api):
    down = ScriptedBank(name="downbank", charges=[ProcessorUnreachable("bank refused")])
    refuses = Tokenizer(name="refuses", tokens=[TokenResult.refused("VPA_INVALID", "No")])
    away = Tokenizer(name="away", tokens=[ProcessorUnreachable("tokenizer down")])
    with register_plugin(ctx, ProvidesProcessors(down, refuses, away)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["refuses", "away", "test"])
        payment_id = create_payment(api).json["id"]
        assert payments.process(ctx, payment_id) == "rerouted"
        assert payments.process(ctx, payment_id) == "success"
    record = row(ctx, payment_id)["routing"]
    assert record["processor"] == "test"
    assert steps(record) == [
        ("downbank", "charge", "unreachable"),
        ("refuses", "tokenize", "skipped"),
        ("away", "tokenize", "unreachable"),
    ]
    assert record["attempts"][1]["reason"] == "refused the stored upi details (VPA_INVALID)"
    assert record["attempts"][2]["reason"] == "tokenizer down"
    assert refuses.calls == [f"tokenize {payment_id}"] and away.calls == [f"tokenize {payment_id}"]


def test_with_every_fallback_refusing_the_first_processor_is_asked_again(ctx, api):
    down = ScriptedBank(name="downbank", charges=[ProcessorUnreachable("bank refused")])
    refuses = Tokenizer(name="refuses", tokens=[TokenResult.refused("VPA_INVALID", "No")])
    with register_plugin(ctx, ProvidesProcessors(down, refuses)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["refuses"])
        payment_id = create_payment(api).json["id"]
        assert payments.process(ctx, payment_id) == "deferred"
    waiting = row(ctx, payment_id)
    assert (waiting["status"], waiting["processor"]) == ("pending", "downbank")
    assert steps(waiting["routing"]) == [
        ("downbank", "charge", "unreachable"),
        ("refuses", "tokenize", "skipped"),
    ]


def test_a_card_payment_still_skips_tokenizing_candidates_with_the_new_reason(ctx, api):
    down = ScriptedBank(name="downbank", charges=[ProcessorUnreachable("bank refused")])
    with register_plugin(ctx, ProvidesProcessors(down)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "downbank", ["test"])
        payment_id = create_payment(api, method="card", card=CARD).json["id"]
        assert payments.process(ctx, payment_id) == "deferred"
    record = row(ctx, payment_id)["routing"]
    assert row(ctx, payment_id)["processor"] == "downbank"
    assert steps(record) == [("downbank", "charge", "unreachable"), ("test", "charge", "skipped")]
    assert record["attempts"][1]["reason"] == routing.NEEDS_CARD_AGAIN
    assert routing.NEEDS_CARD_AGAIN == "needs the card details again (not stored)"
    assert payment_count(ctx) == 1
