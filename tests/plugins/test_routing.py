"""Routing payments to a merchant's processor, the pending/sync half of the processor API, and
what operators and the dashboard can see (``paygate merchants``, ``GET /api/v1/plugins``)."""

from __future__ import annotations

import logging

import pytest

from paygate import BadRequest, ChargeResult
from paygate.config import TEST_MERCHANT_ID
from paygate.services import merchants, payments
from paygate.testing import register_plugin
from tests.fixtures import AUTH
from tests.plugins.helpers import (
    TINYBANK,
    ProvidesProcessors,
    ScriptedBank,
    create_order,
    create_payment,
    fake_distribution,
)
from tests.plugins.test_loading import paygate_cli, unique


def payment_row(ctx, payment_id: str) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT status, processor, charge_acknowledged, error_code, "
            "next_check_at - now() AS due_in FROM payments WHERE id = %s",
            (payment_id,),
        ).fetchone()


def make_due(ctx, payment_id: str) -> None:
    with ctx.db.connection() as conn:
        conn.execute("UPDATE payments SET next_check_at = now() WHERE id = %s", (payment_id,))


def payment_count(ctx) -> int:
    with ctx.db.connection() as conn:
        return conn.execute("SELECT count(*) AS n FROM payments").fetchone()["n"]


# -- configuration time -------------------------------------------------------------------


def test_an_unknown_processor_is_refused_when_configured(ctx):
    with pytest.raises(BadRequest) as raised:
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "nosuchbank")
    assert raised.value.field == "processor"
    assert raised.value.description.startswith("Unknown processor 'nosuchbank' (registered: ")
    assert merchants.get(ctx, TEST_MERCHANT_ID).processor == "test"


def test_a_disabled_processor_is_refused_when_configured(make_ctx):
    ctx = make_ctx(PAYGATE_DISABLE_PLUGINS="test")
    with pytest.raises(BadRequest, match="'test' is disabled by PAYGATE_DISABLE_PLUGINS"):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "test")


def test_paygate_merchants_set_processor_routes_by_email_or_id(ctx, tmp_path, monkeypatch):
    module = unique("tinybank")
    site = fake_distribution(
        tmp_path, "paygate-tinybank", "1.0", {"tinybank": module}, {module: TINYBANK}
    )
    done = paygate_cli("merchants", "set-processor", "test@example.com", "tinybank", site=site)
    assert done.returncode == 0, done.stderr
    assert "now routes new payments to tinybank" in done.stdout
    assert merchants.get(ctx, TEST_MERCHANT_ID).processor == "tinybank"
    shown = paygate_cli("merchants", "show", TEST_MERCHANT_ID, site=site)
    assert "processor: tinybank" in shown.stdout
    back = paygate_cli("merchants", "set-processor", TEST_MERCHANT_ID, "test")
    assert back.returncode == 0 and merchants.get(ctx, TEST_MERCHANT_ID).processor == "test"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("test@example.com", "nosuchbank"), "paygate: Unknown processor 'nosuchbank'"),
        (("nobody@example.com", "test"), "paygate: Merchant not found"),
    ],
)
def test_paygate_merchants_set_processor_refuses_in_one_line(ctx, args, message):
    result = paygate_cli("merchants", "set-processor", *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert merchants.get(ctx, TEST_MERCHANT_ID).processor == "test"


# -- create time --------------------------------------------------------------------------


def test_a_payment_for_a_merchant_whose_processor_disappeared_is_a_400(ctx, api):
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE merchants SET processor = 'vanished' WHERE id = %s", (TEST_MERCHANT_ID,)
        )
    merchants.forget_cached()
    result = create_payment(api)
    assert result.status_code == 400
    assert result.json["error"]["code"] == "BAD_REQUEST_ERROR"
    assert "Unknown processor 'vanished'" in result.json["error"]["description"]
    order = create_order(api)
    public = api.simulate_post(
        "/api/v1/payments/public",
        json={"order_id": order["id"], "method": "upi", "vpa": "user@paytm"},
    )
    assert public.status_code == 400
    assert payment_count(ctx) == 0


def test_a_method_the_merchants_processor_does_not_take_is_a_400(ctx, api):
    with register_plugin(ctx, ProvidesProcessors(ScriptedBank(name="upionly", methods={"upi"}))):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "upionly")
        card = {"number": "4111111111111111", "expiry_month": "12", "expiry_year": "99"}
        result = create_payment(api, method="card", card={**card, "cvv": "123"})
        assert result.status_code == 400, result.text
        assert result.json["error"]["description"] == "Payment method card is not supported"
        assert create_payment(api).status_code == 201
    assert payment_count(ctx) == 1


def test_a_processor_without_partial_refunds_refunds_only_the_whole_amount(ctx, api):
    bank = ScriptedBank(name="wholebank", supports_partial_refund=False)
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "wholebank")
        payment_id = create_payment(api, 10000).json["id"]
        assert payments.process(ctx, payment_id) == "success"
        path = f"/api/v1/payments/{payment_id}/refunds"
        partial = api.simulate_post(path, json={"amount": 4000}, headers=AUTH)
        assert partial.status_code == 400
        assert partial.json["error"]["description"] == (
            "Processor 'wholebank' supports full refunds only"
        )
        assert api.simulate_post(path, json={"amount": 10000}, headers=AUTH).status_code == 201


# -- worker time: pending, sync, never guessing -------------------------------------------


def test_a_pending_charge_is_charged_once_then_synced_when_due(ctx, api):
    bank = ScriptedBank(
        name="slowpoke",
        charges=[ChargeResult.pending(retry_after=60, reference="sp_1")],
        syncs=[ChargeResult.success(reference="sp_1")],
    )
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "slowpoke")
        payment_id = create_payment(api).json["id"]
        assert payments.process(ctx, payment_id) == "deferred"
        row = payment_row(ctx, payment_id)
        assert row["status"] == "pending" and row["charge_acknowledged"]
        assert 55 < row["due_in"].total_seconds() <= 60  # retry_after is honoured
        assert payments.process(ctx, payment_id) == "skipped"  # not due: nobody asks early
        make_due(ctx, payment_id)
        assert payments.process(ctx, payment_id) == "success"
    assert bank.calls == [f"charge {payment_id}", f"sync {payment_id}"]


def test_a_pending_answer_without_retry_after_backs_off(ctx, api):
    bank = ScriptedBank(
        name="vague", charges=[ChargeResult.pending()], syncs=[ChargeResult.pending()]
    )
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "vague")
        payment_id = create_payment(api).json["id"]
        # Start past the short backoff steps, which are waited out inside the job.
        with ctx.db.connection() as conn:
            conn.execute("UPDATE payments SET processor_attempts = 2 WHERE id = %s", (payment_id,))
        waits = []
        for _ in range(4):
            make_due(ctx, payment_id)
            assert payments.process(ctx, payment_id) == "deferred"
            waits.append(round(payment_row(ctx, payment_id)["due_in"].total_seconds()))
    assert waits == sorted(waits) and waits[0] >= 3 and waits[-1] > waits[0]  # growing
    assert bank.calls == [f"charge {payment_id}"] + [f"sync {payment_id}"] * 3
    assert payment_row(ctx, payment_id)["status"] == "pending"  # never guessed


def test_a_processor_that_raises_leaves_the_payment_pending_and_charges_again_later(ctx, api):
    bank = ScriptedBank(
        name="flaky", charges=[ConnectionError("bank unreachable"), ChargeResult.success()]
    )
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "flaky")
        payment_id = create_payment(api).json["id"]
        assert payments.process(ctx, payment_id) == "deferred"
        row = payment_row(ctx, payment_id)
        assert (row["status"], row["error_code"], row["charge_acknowledged"]) == (
            "pending",
            None,
            False,  # the bank never answered: the next attempt charges (same key), not syncs
        )
        make_due(ctx, payment_id)
        assert payments.process(ctx, payment_id) == "success"
    assert bank.calls == [f"charge {payment_id}", f"charge {payment_id}"]


def test_a_payment_whose_processor_goes_away_waits_for_it_to_come_back(ctx, api, caplog):
    plugin = ProvidesProcessors(ScriptedBank(name="comesandgoes"))
    with register_plugin(ctx, plugin):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "comesandgoes")
        payment_id = create_payment(api).json["id"]
    with caplog.at_level(logging.ERROR, logger="paygate.services.payments"):
        assert payments.process(ctx, payment_id) == "deferred"
    assert payment_row(ctx, payment_id)["status"] == "pending"
    (record,) = caplog.records
    assert "waits for its processor: Unknown processor 'comesandgoes'" in record.getMessage()
    assert record.exc_info is None  # one clear line, not a traceback per attempt
    with register_plugin(ctx, plugin):
        make_due(ctx, payment_id)
        assert payments.process(ctx, payment_id) == "success"


# -- GET /api/v1/plugins ------------------------------------------------------------------


def test_plugins_endpoint_needs_credentials(api):
    result = api.simulate_get("/api/v1/plugins")
    assert result.status_code == 401
    assert result.json["error"]["code"] == "AUTHENTICATION_ERROR"


def test_plugins_endpoint_lists_plugins_processors_and_the_merchants_routing(ctx, api):
    with register_plugin(ctx, ProvidesProcessors(ScriptedBank(name="extra")), name="extra-plugin"):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "extra")
        body = api.simulate_get("/api/v1/plugins", headers=AUTH).json
    rows = {row["name"]: row for row in body["data"]}
    assert rows["paygate.builtin.processors.testmode"] == {
        "name": "paygate.builtin.processors.testmode",
        "kind": "processor",
        "distribution": "paygate",
        "version": rows["paygate.builtin.processors.testmode"]["version"],
        "builtin": True,
        "hooks": ["paygate_register_processors"],
        "processors": ["test"],
        "notifiers": [],
        "observers": [],
        "requires_api": ">=1.1,<2",
        "refund_policy_scope": None,
    }
    assert rows["extra-plugin"]["processors"] == ["extra"] and not rows["extra-plugin"]["builtin"]
    test = next(p for p in body["processors"] if p["name"] == "test")
    assert test == {
        "name": "test",
        "plugin": "paygate.builtin.processors.testmode",
        "methods": ["card", "upi"],
        "supports_partial_refund": True,
        "supports_manual_capture": False,
        "default": True,
        "settings": [],
    }
    assert {
        "name": "webhook",
        "plugin": "paygate.builtin.notifiers.hmac_webhook",
        "default": True,
    } in (body["notifiers"])
    assert body["merchant_processor"] == "extra"
    assert body["disabled"] == []
