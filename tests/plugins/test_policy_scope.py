"""Scoped refund policies (plugin API 1.1): a policy is asked only about payments of the
merchants and processors it is scoped to, and several policies are asked in a defined,
documented order (docs/refund-policies.md, "Scope and order")."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from datetime import UTC, datetime, timedelta

import falcon.testing
import pytest

from paygate import Payment, PaymentStatus, PluginError, RefundDenied, RefundRequest, hookimpl
from paygate.api.app import create_app
from paygate.config import TEST_MERCHANT_ID
from paygate.plugins import load_plugins
from paygate.testing import register_plugin
from tests.fixtures import OTHER_MERCHANT_ID, make_settings
from tests.plugins import test_loading
from tests.plugins.helpers import fake_distribution
from tests.plugins.test_loading import unique
from tests.test_refunds import assert_bad_request, paid_payment, refund, refund_rows

site = test_loading.site  # a directory on sys.path where tests install distributions

PAID = Payment(
    id="pay_scope", merchant_id="merchant_a", order_id="order_scope", amount=10000,
    currency="INR", method="upi", status=PaymentStatus.SUCCESS, processor="test",
    created_at=datetime.now(UTC),
)  # fmt: skip


def ask(plugins, payment: Payment = PAID, amount: int = 100):
    """What the refund service asks the plugin manager, with the payment row locked."""
    return plugins.refund_policy(payment, RefundRequest(payment.id, amount), 0)


class Deny:
    """A policy that refuses every refund with its own reason and counts its calls."""

    def __init__(self, reason: str, processors=None):
        self.reason, self.calls, self.contexts = reason, 0, []
        if processors is not None:
            self.paygate_policy_processors = processors

    @hookimpl
    def paygate_refund_policy(self, payment, context):
        self.calls += 1
        self.contexts.append(context)
        return RefundDenied(self.reason)


def plugins_with(**env: str):
    return load_plugins(make_settings(**env), entry_points=False)


# -- scope --------------------------------------------------------------------------------------


def test_a_policy_scoped_to_merchants_is_asked_only_about_their_payments():
    policy = Deny("merchant rule")
    plugins = plugins_with(PAYGATE_PLUGIN_SCOPED_MERCHANTS="merchant_a, merchant_c")
    with register_plugin(plugins, policy, name="scoped"):
        assert ask(plugins) == RefundDenied("merchant rule")
        for other in ("merchant_b", "merchant_a2", "MERCHANT_A"):
            assert ask(plugins, dataclasses.replace(PAID, merchant_id=other)) is None
    assert policy.calls == 1


def test_a_policy_scoped_to_processors_is_asked_only_about_their_payments():
    policy = Deny("processor rule")
    plugins = plugins_with(PAYGATE_PLUGIN_SCOPED_PROCESSORS="httpbank,slowbank")
    with register_plugin(plugins, policy, name="scoped"):
        assert ask(plugins) is None  # processor "test"
        assert ask(plugins, dataclasses.replace(PAID, processor="httpbank")) == RefundDenied(
            "processor rule"
        )
    assert policy.calls == 1


def test_merchants_and_processors_together_must_both_match():
    policy = Deny("both")
    plugins = plugins_with(
        PAYGATE_PLUGIN_SCOPED_MERCHANTS="merchant_a", PAYGATE_PLUGIN_SCOPED_PROCESSORS="httpbank"
    )
    with register_plugin(plugins, policy, name="scoped"):
        assert ask(plugins) is None
        assert (
            ask(plugins, dataclasses.replace(PAID, merchant_id="b", processor="httpbank")) is None
        )
        assert ask(plugins, dataclasses.replace(PAID, processor="httpbank")) is not None


def test_the_authors_default_scope_applies_until_the_operator_replaces_or_lifts_it():
    for env, asked_for_test in [
        ({}, False),
        ({"PAYGATE_PLUGIN_SCOPED_PROCESSORS": "test"}, True),
        ({"PAYGATE_PLUGIN_SCOPED_PROCESSORS": "*"}, True),
        ({"PAYGATE_PLUGIN_SCOPED_PROCESSORS": ""}, False),  # empty: unset
    ]:
        policy = Deny("author scope", processors={"httpbank"})
        plugins = plugins_with(**env)
        with register_plugin(plugins, policy, name="scoped"):
            assert (ask(plugins) is not None) is asked_for_test, env
            httpbank = dataclasses.replace(PAID, processor="httpbank")
            assert (ask(plugins, httpbank) is not None) is (
                env.get("PAYGATE_PLUGIN_SCOPED_PROCESSORS", "") != "test"
            ), env


def test_a_star_means_every_merchant():
    policy = Deny("all")
    plugins = plugins_with(PAYGATE_PLUGIN_SCOPED_MERCHANTS="*")
    with register_plugin(plugins, policy, name="scoped"):
        assert ask(plugins, dataclasses.replace(PAID, merchant_id="anyone")) is not None


def test_each_policy_gets_its_own_context():
    first, second = Deny("first"), Deny("second")
    plugins = plugins_with(
        PAYGATE_PLUGIN_FIRST_LIMIT="10",
        PAYGATE_PLUGIN_SECOND_MERCHANTS="nobody",
        PAYGATE_PLUGIN_SECOND_LIMIT="20",
        PAYGATE_REFUND_POLICY_ORDER="second,first",
    )
    with register_plugin(plugins, first, name="first"), register_plugin(plugins, second, "second"):
        assert ask(plugins) == RefundDenied("first")  # second is out of scope
        assert ask(plugins, dataclasses.replace(PAID, merchant_id="nobody")) == RefundDenied(
            "second"
        )
    assert [(c.plugin, dict(c.config)) for c in first.contexts] == [("first", {"limit": "10"})]
    assert [(c.plugin, c.config["limit"]) for c in second.contexts] == [("second", "20")]


def test_a_policy_scope_that_is_not_a_set_of_names_is_refused():
    plugins = plugins_with()
    with pytest.raises(PluginError, match="paygate_policy_processors"):
        load_plugins(plugins.settings, entry_points=False, extra=[Deny("x", processors="test")])


# -- order -----------------------------------------------------------------------------------------


OLD = dataclasses.replace(PAID, created_at=datetime.now(UTC) - timedelta(days=10))
WINDOW = "Refunds are allowed only within 1 day of the payment"


def test_by_default_run_time_plugins_speak_first_latest_first_and_the_built_ins_last():
    plugins = plugins_with(PAYGATE_REFUND_WINDOW_DAYS="1")
    assert ask(plugins, OLD) == RefundDenied(WINDOW)
    older, newer = Deny("older"), Deny("newer")
    with register_plugin(plugins, older, "older"), register_plugin(plugins, newer, "newer"):
        assert ask(plugins, OLD) == RefundDenied("newer")
        assert [name for name, _ in plugins.refund_policies()] == [
            "newer",
            "older",
            "paygate.builtin.policies.refund_window",
        ]


def test_the_operators_order_comes_first_in_its_own_order():
    older, newer = Deny("older"), Deny("newer")
    plugins = plugins_with(
        PAYGATE_REFUND_WINDOW_DAYS="1", PAYGATE_REFUND_POLICY_ORDER="refund_window, older"
    )
    with register_plugin(plugins, older, "older"), register_plugin(plugins, newer, "newer"):
        assert ask(plugins, OLD) == RefundDenied(WINDOW)
        assert ask(plugins, PAID) == RefundDenied("older")  # within the window
        assert [name for name, _ in plugins.refund_policies()] == [
            "paygate.builtin.policies.refund_window",
            "older",
            "newer",
        ]


DENYING_POLICY = """
from paygate import RefundDenied, hookimpl

@hookimpl
def paygate_refund_policy(refund_request):
    return RefundDenied("{name} says no")
"""


def test_installed_policies_are_asked_by_plugin_name_whatever_the_install_order(site):
    names = ["bravo", "alpha", "charlie"]
    for index, name in enumerate(names):  # each on its own path entry, bravo found first
        module = unique(name)
        root = site / str(index)
        fake_distribution(
            root, f"paygate-{name}", "1", {name: module}, {module: DENYING_POLICY.format(name=name)}
        )
        sys.path.insert(index, str(root))
    try:
        plugins = load_plugins(make_settings(PAYGATE_REFUND_WINDOW_DAYS="1"))
        assert ask(plugins, OLD) == RefundDenied("alpha says no")
        order = [name for name, _ in plugins.refund_policies()]
        assert order == ["alpha", "bravo", "charlie", "paygate.builtin.policies.refund_window"]
        with register_plugin(plugins, Deny("run time"), "zulu"):
            assert [name for name, _ in plugins.refund_policies()][:2] == ["zulu", "alpha"]
        reordered = load_plugins(make_settings(PAYGATE_REFUND_POLICY_ORDER="charlie"))
        assert ask(reordered, OLD) == RefundDenied("charlie says no")
    finally:
        del sys.path[: len(names)]


def test_settings_that_would_do_nothing_are_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="paygate.plugins"):
        plugins_with(
            PAYGATE_REFUND_POLICY_ORDER="refund_windw",
            PAYGATE_PLUGIN_HMAC_WEBHOOK_MERCHANTS="merchant_a",
        )
    assert "PAYGATE_REFUND_POLICY_ORDER names refund_windw, which matches no refund policy" in (
        caplog.text
    )
    assert "PAYGATE_PLUGIN_HMAC_WEBHOOK_MERCHANTS is set" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="paygate.plugins"):
        plugins_with(PAYGATE_REFUND_POLICY_ORDER="nosuch, nosuch_either")
    assert "names nosuch, nosuch_either, which match no refund policy plugin" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="paygate.plugins"):
        plugins_with(
            PAYGATE_REFUND_POLICY_ORDER="refund_window",
            PAYGATE_PLUGIN_REFUND_WINDOW_PROCESSORS="test",
        )
    assert caplog.text == ""


# -- through the API: a refund of a merchant in scope is refused, one out of scope is not ----------


def scoped_api(make_ctx, **env):
    ctx = make_ctx(**env)
    return ctx, falcon.testing.TestClient(create_app(ctx))


@pytest.mark.parametrize(
    "env, refused",
    [
        ({"PAYGATE_PLUGIN_MANAGER_MERCHANTS": TEST_MERCHANT_ID}, True),
        ({"PAYGATE_PLUGIN_MANAGER_MERCHANTS": OTHER_MERCHANT_ID}, False),
        ({"PAYGATE_PLUGIN_MANAGER_PROCESSORS": "test"}, True),
        ({"PAYGATE_PLUGIN_MANAGER_PROCESSORS": "slowbank"}, False),
    ],
)
def test_a_scoped_policy_through_the_refund_api(make_ctx, env, refused):
    ctx, api = scoped_api(make_ctx, **env)
    payment = paid_payment(ctx, api)
    policy = Deny("Refunds need a manager")
    with register_plugin(ctx, policy, name="manager"):
        answer = refund(api, payment["id"], {"amount": 100})
    if refused:
        assert_bad_request(answer, "Refunds need a manager")
        assert refund_rows(ctx, payment["id"]) == []
    else:
        assert answer.status_code == 201, answer.text
        assert len(refund_rows(ctx, payment["id"])) == 1
    assert policy.calls == int(refused)


def test_paygate_plugins_shows_a_refund_policys_scope_in_force(site):
    """The declared scope, then the operator's replacing it, then ``*`` lifting it."""
    module = unique("scoped")
    source = (
        "from paygate import RefundDenied, hookimpl\n"
        "paygate_policy_processors = {'kitbank', 'test'}\n"
        "@hookimpl\n"
        "def paygate_refund_policy(refund_request):\n"
        "    return None\n"
    )
    fake_distribution(site, "paygate-scoped", "1.0", {"scoped": module}, {module: source})

    def shown(**env: str) -> tuple[str, dict]:
        text = test_loading.paygate_cli("plugins", site=site, **env)
        assert text.returncode == 0, text.stderr
        listing = test_loading.paygate_cli("plugins", "--json", site=site, **env)
        (row,) = [r for r in json.loads(listing.stdout)["data"] if r["name"] == "scoped"]
        return text.stdout, row["refund_policy_scope"]

    text, scope = shown()
    assert "provides:     refund policy (payments of processors kitbank, test)" in text
    assert scope == {"merchants": "*", "processors": ["kitbank", "test"]}
    text, scope = shown(
        PAYGATE_PLUGIN_SCOPED_PROCESSORS="test", PAYGATE_PLUGIN_SCOPED_MERCHANTS="m_1,m_2"
    )
    assert "refund policy (payments of merchants m_1, m_2; processors test)" in text
    assert scope == {"merchants": ["m_1", "m_2"], "processors": ["test"]}
    text, scope = shown(PAYGATE_PLUGIN_SCOPED_PROCESSORS="*")
    assert "provides:     refund policy (every payment)" in text
    assert scope == {"merchants": "*", "processors": "*"}
