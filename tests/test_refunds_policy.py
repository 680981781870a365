"""The ``paygate_refund_policy`` hook and the built-in refund-window policy."""

from __future__ import annotations

import dataclasses
import logging
import types
from pathlib import Path

import falcon.testing
import psycopg
import pytest

from paygate import Payment, PluginError, RefundDenied, RefundRequest, hookimpl
from paygate.api.app import create_app
from paygate.builtin.policies import refund_window
from paygate.plugins import load_plugins
from paygate.services import refunds
from tests.fixtures import AUTH, make_settings
from tests.test_refunds import assert_bad_request, paid_payment, read_payment, refund, refund_rows


class DenyLarge:
    """Refuses refunds above a limit; records what it was shown."""

    def __init__(self, limit: int, reason: str = "Refunds above 50 rupees need a manager"):
        self.limit, self.reason, self.calls = limit, reason, []

    @hookimpl
    def paygate_refund_policy(self, payment, refund_request, refunded_amount):
        self.calls.append((payment, refund_request, refunded_amount))
        return RefundDenied(self.reason) if refund_request.amount > self.limit else None


class NoObjection:
    def __init__(self):
        self.calls = 0

    @hookimpl
    def paygate_refund_policy(self, refund_request):  # a subset of the arguments is enough
        self.calls += 1
        return None


def registered(ctx, *plugins):
    for plugin in plugins:
        ctx.plugins.pm.register(plugin)


def unregistered(ctx, *plugins):
    for plugin in plugins:
        ctx.plugins.pm.unregister(plugin)


def backdate(ctx, payment_id: str, days: float) -> None:
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE payments SET created_at = now() - make_interval(secs => %s) WHERE id = %s",
            (days * 86400, payment_id),
        )


# -- the hook ---------------------------------------------------------------------------------


def test_hook_paygate_refund_policy(ctx, api):
    """A denial answers 400 with the policy's reason and records nothing; the policy sees the
    payment, the request and the amount already refunded."""
    payment = paid_payment(ctx, api, amount=10000)
    assert refund(api, payment["id"], {"amount": 1000}).status_code == 201
    policy = DenyLarge(limit=5000)
    registered(ctx, policy)
    try:
        key = {"Idempotency-Key": "policy-1"}
        denied = refund(api, payment["id"], {"amount": 6000, "reason": "late"}, key)
        assert_bad_request(denied, "Refunds above 50 rupees need a manager")
        assert len(refund_rows(ctx, payment["id"])) == 1
        assert read_payment(api, payment["id"])["amount_refunded"] == 1000
        shown, request, refunded = policy.calls[-1]
        assert isinstance(shown, Payment) and shown.id == payment["id"]
        assert shown.amount_refunded == 1000 and shown.refundable_amount == 9000
        assert request == RefundRequest(payment_id=payment["id"], amount=6000, reason="late")
        assert refunded == 1000
        # The denied request stored nothing under its key: a corrected retry goes through.
        unregistered(ctx, policy)
        assert (
            refund(api, payment["id"], {"amount": 6000, "reason": "late"}, key).status_code == 201
        )
    finally:
        if ctx.plugins.pm.is_registered(policy):
            unregistered(ctx, policy)


def test_first_objection_wins_and_no_objection_lets_others_speak(ctx, api):
    payment = paid_payment(ctx, api)
    quiet, first, second = NoObjection(), DenyLarge(100, "first says no"), DenyLarge(100, "no")
    # pluggy calls the most recently registered implementation first.
    registered(ctx, second, first, quiet)
    try:
        assert_bad_request(refund(api, payment["id"], {"amount": 500}), "first says no")
        assert quiet.calls == 1 and len(first.calls) == 1 and second.calls == []
        assert refund(api, payment["id"], {"amount": 100}).status_code == 201
        assert quiet.calls == 2 and len(second.calls) == 1
    finally:
        unregistered(ctx, second, first, quiet)


def test_core_invariants_are_checked_before_any_policy(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    failed = paid_payment(ctx, api, vpa="failure@test")
    policy = NoObjection()
    registered(ctx, policy)
    try:
        assert_bad_request(
            refund(api, payment["id"], {"amount": 10001}), "Refund amount exceeds available amount"
        )
        assert_bad_request(
            refund(api, failed["id"], {"amount": 100}), "Payment not in refundable state"
        )
        assert policy.calls == 0
    finally:
        unregistered(ctx, policy)


def test_a_policy_runs_while_the_payment_row_is_locked(ctx, api, database_url):
    payment = paid_payment(ctx, api)
    seen = []

    class ProbeLock:
        @hookimpl
        def paygate_refund_policy(self, payment):
            with psycopg.connect(database_url, autocommit=True) as other:
                try:
                    other.execute(
                        "SELECT 1 FROM payments WHERE id = %s FOR UPDATE NOWAIT", (payment.id,)
                    )
                    seen.append("unlocked")
                except psycopg.errors.LockNotAvailable:
                    seen.append("locked")
            return None

    probe = ProbeLock()
    registered(ctx, probe)
    try:
        assert refund(api, payment["id"], {"amount": 100}).status_code == 201
    finally:
        unregistered(ctx, probe)
    assert seen == ["locked"]


# -- the refund-window policy -----------------------------------------------------------------


def window_api(make_ctx, days: str):
    """A context and an API client whose settings carry ``PAYGATE_REFUND_WINDOW_DAYS=days``."""
    ctx = make_ctx(**{refund_window.VARIABLE: days})
    return ctx, falcon.testing.TestClient(create_app(ctx))


def test_refund_window_is_off_unless_configured(ctx, api, make_ctx):
    assert ctx.settings.refund_window_days == 0
    payment = paid_payment(ctx, api)
    backdate(ctx, payment["id"], days=400)
    assert refund(api, payment["id"], {"amount": 100}).status_code == 201
    _, zero = window_api(make_ctx, "0")
    assert refund(zero, payment["id"], {"amount": 100}).status_code == 201


def test_refund_window_denies_refunds_of_payments_older_than_the_window(make_ctx):
    ctx, api = window_api(make_ctx, "30")
    old, recent = paid_payment(ctx, api), paid_payment(ctx, api)
    backdate(ctx, old["id"], days=31)
    backdate(ctx, recent["id"], days=29)
    assert_bad_request(
        refund(api, old["id"], {"amount": 100}),
        "Refunds are allowed only within 30 days of the payment",
    )
    assert refund_rows(ctx, old["id"]) == []
    assert read_payment(api, old["id"])["amount_refunded"] == 0
    assert refund(api, recent["id"], {"amount": 100}).status_code == 201


def test_refund_window_can_be_disabled_by_name(make_ctx, api, test_merchant):
    ctx = make_ctx(**{refund_window.VARIABLE: "1"}, PAYGATE_DISABLE_PLUGINS="refund_window")
    payment = paid_payment(ctx, api)
    backdate(ctx, payment["id"], days=2)
    created = refunds.create(ctx, test_merchant, payment["id"], {"amount": 100})
    assert created.status == "pending"


@pytest.mark.parametrize("value", ["abc", "-3", "1.5"])
def test_refund_window_misconfiguration_fails_loudly_not_open(value):
    """A bad value stops every process at start-up, naming the variable; a bad window handed
    over in code fails the refund instead of allowing it."""
    with pytest.raises(ValueError, match=refund_window.VARIABLE):
        make_settings(**{refund_window.VARIABLE: value})
    payment = Payment(
        id="pay_x", merchant_id="m", order_id="o", amount=100, currency="INR",
        method="upi", status="success",
    )  # fmt: skip
    bad = dataclasses.replace(make_settings(), refund_window_days=-3)
    with pytest.raises(ValueError, match=refund_window.VARIABLE):
        refund_window.paygate_refund_policy(payment, RefundRequest("pay_x", 100), 0, bad)


def test_refund_window_says_day_for_one_day():
    assert refund_window.denial(1).reason == "Refunds are allowed only within 1 day of the payment"


def test_refund_window_misconfiguration_records_nothing_and_answers_503(ctx, api):
    payment = paid_payment(ctx, api)
    bad = dataclasses.replace(ctx.settings, refund_window_days=-30)
    misconfigured = dataclasses.replace(ctx, settings=bad, plugins=load_plugins(bad))
    result = falcon.testing.TestClient(create_app(misconfigured)).simulate_post(
        f"/api/v1/payments/{payment['id']}/refunds", json={"amount": 100}, headers=AUTH
    )
    assert result.status_code == 503
    assert result.json["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "-30" not in result.text  # internals stay in the log
    assert refund_rows(ctx, payment["id"]) == []


class Crashes:
    """A refund policy with a bug: it raises instead of answering."""

    def __init__(self):
        self.calls = 0

    @hookimpl
    def paygate_refund_policy(self, payment):
        self.calls += 1
        return {"refundable": True}["refundable_" + payment.method]  # KeyError


def test_a_policy_that_raises_refuses_the_refund_with_503_naming_it_and_records_nothing(
    ctx, api, caplog
):
    """A bug in a policy neither lets the refund through unjudged nor answers a bare 500: the
    merchant is told which policy failed and to retry, the operator gets the traceback."""
    payment = paid_payment(ctx, api, amount=10000)
    policy = Crashes()
    ctx.plugins.pm.register(policy, name="crashing_policy")
    key = {"Idempotency-Key": "policy-crash-1"}
    try:
        with caplog.at_level(logging.ERROR, logger="paygate.plugins"):
            result = refund(api, payment["id"], {"amount": 1000}, key)
        assert result.status_code == 503, result.text
        assert result.json["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert result.json["error"]["description"] == (
            "Refund policy crashing_policy failed; try again later"
        )
        assert "KeyError" not in result.text and "refundable_" not in result.text
        assert policy.calls == 1
        assert refund_rows(ctx, payment["id"]) == []
        assert read_payment(api, payment["id"])["amount_refunded"] == 0
        (logged,) = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert "crashing_policy" in logged.getMessage() and payment["id"] in logged.getMessage()
        assert logged.exc_info and logged.exc_info[0] is KeyError
    finally:
        ctx.plugins.pm.unregister(policy)
    # Nothing was stored under the key: the same request goes through once the policy is gone.
    assert refund(api, payment["id"], {"amount": 1000}, key).status_code == 201


# -- the documented worked example --------------------------------------------------------------


def worked_example() -> types.ModuleType:
    """The Python block after ``<!-- worked-example -->`` in docs/refund-policies.md, as a module."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "refund-policies.md").read_text()
    block = text.split("<!-- worked-example -->", 1)[1].split("```python\n", 1)[1]
    module = types.ModuleType("min_refund_example")
    exec(compile(block.split("\n```", 1)[0], "docs/refund-policies.md", "exec"), module.__dict__)
    return module


def test_the_documented_worked_example_policy_works(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    example = worked_example()
    registered(ctx, example)
    try:
        assert_bad_request(
            refund(api, payment["id"], {"amount": 500}), "Partial refunds must be at least ₹10.00"
        )
        assert refund_rows(ctx, payment["id"]) == []
        assert refund(api, payment["id"], {"amount": 9500}).status_code == 201
        assert refund(api, payment["id"], {"amount": 500}).status_code == 201  # the remainder
    finally:
        unregistered(ctx, example)


def test_the_documented_policy_test_passes_against_the_worked_example(paygate_settings):
    """The test block after ``<!-- policy-test -->`` in docs/refund-policies.md, run as printed
    with the worked example standing in for ``paygate_policy_min_refund`` (the installed-entry-
    point test is left out: no such distribution is installed here)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "refund-policies.md").read_text()
    block = text.split("<!-- policy-test -->", 1)[1].split("```python\n", 1)[1]
    block = block.split("\n```", 1)[0]
    block = block.replace("import paygate_policy_min_refund as policy\n", "")
    namespace = {"policy": worked_example()}
    exec(compile(block, "docs/refund-policies.md", "exec"), namespace)
    namespace["test_small_partial_refunds_are_denied_and_the_rest_allowed"](paygate_settings)


def test_the_documented_start_up_check_refuses_a_bad_minimum_and_uses_a_good_one(ctx, api):
    """docs/refund-policies.md "Configuration checked at start-up": the policy validates its
    ``context.config`` in ``paygate_startup`` and denies with the configured minimum."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "refund-policies.md").read_text()
    section = text.split("### Configuration checked at start-up", 1)[1]
    block = section.split("```python\n", 1)[1].split("\n```", 1)[0]
    module = types.ModuleType("min_refund")
    exec(compile(block, "docs/refund-policies.md", "exec"), module.__dict__)
    with pytest.raises(PluginError, match="PAYGATE_PLUGIN_MIN_REFUND_MINIMUM must be paise > 0"):
        load_plugins(make_settings(PAYGATE_PLUGIN_MIN_REFUND_MINIMUM="ten"), extra=[module])
    plugins = load_plugins(make_settings(PAYGATE_PLUGIN_MIN_REFUND_MINIMUM="2000"), extra=[module])
    payment = paid_payment(ctx, api, amount=10000)
    configured = dataclasses.replace(ctx, plugins=plugins)
    client = falcon.testing.TestClient(create_app(configured))
    small = client.simulate_post(
        f"/api/v1/payments/{payment['id']}/refunds", json={"amount": 1500}, headers=AUTH
    )
    assert_bad_request(small, "Partial refunds must be at least 2000 paise")
    assert refund_rows(ctx, payment["id"]) == []
