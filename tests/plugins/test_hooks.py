"""One ``test_hook_<name>`` per hook: a small plugin registered as a third party would, and the
core honouring it through the public API (the meta-tests require these names)."""

from __future__ import annotations

import importlib
import zlib

import falcon.testing
import pytest
import requests

from paygate import (
    ChargeResult,
    Delivery,
    DeliveryResult,
    PluginError,
    RefundDenied,
    Route,
    hookimpl,
)
from paygate.api.app import create_app
from paygate.config import TEST_MERCHANT_ID
from paygate.plugins import load_plugins
from paygate.services import merchants, payments, webhooks
from paygate.testing import register_plugin
from tests.fixtures import AUTH, make_settings, set_webhook_url
from tests.plugins import test_loading
from tests.plugins.helpers import (
    ProvidesProcessors,
    ScriptedBank,
    create_payment,
    fake_distribution,
)

site = test_loading.site  # a directory on sys.path where tests install distributions


def stored(ctx, payment_id: str) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT status, processor, processor_reference, error_code, error_description "
            "FROM payments WHERE id = %s",
            (payment_id,),
        ).fetchone()


def test_hook_paygate_register_processors(ctx, api):
    """A registered processor can be chosen by a merchant; its answer becomes the payment's."""
    bank = ScriptedBank(
        name="hookbank",
        charges=[ChargeResult.failed("CARD_DECLINED", "Declined by Hookbank", "hb_1")],
    )
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "hookbank")
        created = create_payment(api)
        assert created.status_code == 201, created.text
        payment_id = created.json["id"]
        assert payments.process(ctx, payment_id) == "failed"
    assert bank.calls == [f"charge {payment_id}"]
    assert stored(ctx, payment_id) == {
        "status": "failed",
        "processor": "hookbank",
        "processor_reference": "hb_1",
        "error_code": "CARD_DECLINED",
        "error_description": "Declined by Hookbank",
    }
    shown = api.simulate_get(f"/api/v1/payments/{payment_id}", headers=AUTH).json
    assert (shown["status"], shown["error_code"]) == ("failed", "CARD_DECLINED")


def test_hook_paygate_register_processors_receives_the_gateway_settings(ctx):
    seen = []

    class NeedsSettings:
        @hookimpl
        def paygate_register_processors(self, register, settings):
            seen.append(settings)
            register(ScriptedBank(name="configured"))

    with register_plugin(ctx, NeedsSettings()):
        assert "configured" in ctx.plugins.processors
    assert seen and seen[-1] is ctx.settings and seen[-1].test_mode is True
    assert "configured" not in ctx.plugins.processors  # gone once unregistered


class RelayNotifier:
    """Delivers with plain requests and says so in a header, so the receiver can tell."""

    name = "webhook"

    def deliver(self, delivery: Delivery) -> DeliveryResult:
        try:
            answer = requests.post(
                delivery.url,
                data=delivery.body,
                headers={"Content-Type": "application/json", "X-Delivered-By": "relay"},
                timeout=delivery.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return DeliveryResult(ok=False, error=exc.__class__.__name__)
        return DeliveryResult(ok=answer.ok, status_code=answer.status_code, body=answer.text)


class ProvidesRelay:
    @hookimpl
    def paygate_register_notifiers(self, register):
        register(RelayNotifier())


def test_hook_paygate_register_notifiers(make_ctx, httpserver):
    """With the built-in notifier disabled, a plugin's ``webhook`` notifier delivers events."""
    ctx = make_ctx(PAYGATE_DISABLE_PLUGINS="hmac_webhook")
    assert "webhook" not in ctx.plugins.notifiers
    httpserver.expect_request("/hooks", method="POST").respond_with_data("ok")
    set_webhook_url(ctx, httpserver.url_for("/hooks"))
    api = falcon.testing.TestClient(create_app(ctx))
    with register_plugin(ctx, ProvidesRelay()):
        assert isinstance(ctx.plugins.notifier(), RelayNotifier)
        assert create_payment(api).status_code == 201
        with ctx.db.connection() as conn:
            log_ids = [str(r["id"]) for r in conn.execute("SELECT id FROM webhook_logs")]
        assert len(log_ids) == 2  # payment.created and payment.pending
        assert [webhooks.deliver(ctx, log_id) for log_id in log_ids] == ["success", "success"]
    received = [request for request, _ in httpserver.log]
    assert len(received) == 2
    assert {r.headers["X-Delivered-By"] for r in received} == {"relay"}


def test_hook_paygate_refund_policy(ctx, api):
    """A policy plugin's objection refuses the refund with its reason; gone when unregistered."""

    class OnlyWholeRupees:
        @hookimpl
        def paygate_refund_policy(self, refund_request):
            if refund_request.amount % 100:
                return RefundDenied("Refunds must be whole rupees")
            return None

    payment_id = create_payment(api, 10000).json["id"]
    assert payments.process(ctx, payment_id) == "success"
    path = f"/api/v1/payments/{payment_id}/refunds"
    with register_plugin(ctx, OnlyWholeRupees()):
        denied = api.simulate_post(path, json={"amount": 150}, headers=AUTH)
        assert denied.status_code == 400
        assert denied.json["error"]["code"] == "BAD_REQUEST_ERROR"
        assert denied.json["error"]["description"] == "Refunds must be whole rupees"
        assert api.simulate_post(path, json={"amount": 200}, headers=AUTH).status_code == 201
    assert api.simulate_post(path, json={"amount": 150}, headers=AUTH).status_code == 201


def test_hook_paygate_register_observers(ctx, api):
    """A registered observer is fed every event from the event log in order, with the plugin's
    own context at registration; gone once unregistered."""
    from paygate.jobs.observers import ObserverRunner
    from tests.fixtures import wait_for

    seen, contexts = [], []

    class Collects:
        name = "collects"

        def observe(self, event):
            seen.append(event)

    class ProvidesObserver:
        @hookimpl
        def paygate_register_observers(self, register, context):
            contexts.append(context)
            register(Collects())

    with ctx.db.connection() as conn:
        conn.execute("DELETE FROM observer_positions")
    with register_plugin(ctx, ProvidesObserver(), name="collector"):
        observer = ctx.plugins.observers["collects"]
        runner = ObserverRunner(ctx, observer)
        runner.step()  # a new observer starts at the head of the log
        payment_id = create_payment(api).json["id"]
        # settled once every transaction that started before it has ended (the whole server's)
        wait_for(lambda: runner.step() is not None and len(seen) == 2, timeout=10)
    assert "collects" not in ctx.plugins.observers
    assert contexts[-1].plugin == "collector" and contexts[-1].test_mode is True
    assert [e.type for e in seen] == ["payment.created", "payment.pending"]
    assert {e.resource_id for e in seen} == {payment_id}
    assert all(e.merchant_id == TEST_MERCHANT_ID for e in seen)
    assert seen[0].sequence < seen[1].sequence


class SplitRouter:
    """The volume split of docs/plugins.md: a share of orders (by a stable hash of the order
    id) to another processor, configured per plugin."""

    @hookimpl
    def paygate_route_payment(self, request, context):
        share = int(context.config.get("share_percent", "20"))
        if zlib.crc32(request.order_id.encode()) % 100 >= share:
            return None
        return Route(("newbank", *request.default), reason=f"{share}% split to newbank")


def test_hook_paygate_route_payment(make_ctx):
    """A router decides the processor of each payment; no answer keeps the merchant's route;
    its context carries its own configuration."""
    ctx = make_ctx(PAYGATE_PLUGIN_SPLIT_SHARE_PERCENT="50")
    api = falcon.testing.TestClient(create_app(ctx))
    newbank = ScriptedBank(name="newbank")
    with (
        register_plugin(ctx, ProvidesProcessors(newbank)),
        register_plugin(ctx, SplitRouter(), name="split"),
    ):
        made = [create_payment(api).json for _ in range(16)]
        for payment in made:
            assert payments.process(ctx, payment["id"]) == "success"
    routed = {p["routing"]["processor"] for p in made}
    assert routed == {"newbank", "test"}  # 16 orders at 50%: both sides (p of failing 2^-15)
    for payment in made:
        split = zlib.crc32(payment["order_id"].encode()) % 100 < 50
        assert stored(ctx, payment["id"])["processor"] == ("newbank" if split else "test")
        if split:
            assert payment["routing"]["decided_by"] == "router:split"
            assert payment["routing"]["reason"] == "50% split to newbank"
            assert payment["routing"]["candidates"] == ["newbank", "test"]
        else:
            assert payment["routing"]["decided_by"] == "merchant"
    assert len(newbank.calls) == sum(p["routing"]["processor"] == "newbank" for p in made)


PICKY = """
from paygate import PluginError, Route, hookimpl

paygate_api = ">=1.1,<2"
STARTS = []


@hookimpl
def paygate_startup(context):
    STARTS.append((context.plugin, dict(context.config)))
    if not context.config.get("processor"):
        raise PluginError("set PAYGATE_PLUGIN_PICKY_PROCESSOR to the processor to route to")


@hookimpl
def paygate_route_payment(request, context):
    return Route((context.config["processor"],), reason="picky")
"""


def test_hook_paygate_startup(site):
    """A router (no registration hook) validates its configuration once at load, with its own
    context: missing, the gateway does not start and the one line names the plugin, its
    distribution and version and the disable hint; tolerant loads leave it out as a failure."""
    module = test_loading.unique("picky")
    fake_distribution(site, "paygate-picky", "0.1", {"picky": module}, {module: PICKY})
    with pytest.raises(PluginError) as raised:
        load_plugins(make_settings())
    assert str(raised.value) == (
        "plugin 'picky' failed in paygate_startup: set PAYGATE_PLUGIN_PICKY_PROCESSOR to the "
        "processor to route to (distribution 'paygate-picky' 0.1). Fix or uninstall it, or "
        "start without it: PAYGATE_DISABLE_PLUGINS=picky"
    )
    tolerant = load_plugins(make_settings(), tolerant=True)
    (failure,) = tolerant.failures
    assert (failure.name, failure.stage) == ("picky", "startup")
    assert "paygate_route_payment" in failure.hooks and "PROCESSOR" in failure.error
    assert tolerant.pm.get_plugin("picky") is None, "a plugin failing start-up is left out"
    configured = load_plugins(make_settings(PAYGATE_PLUGIN_PICKY_PROCESSOR="test"))
    assert configured.failures == []
    (row,) = [row for row in configured.info() if row.name == "picky"]
    assert row.kind == "router", "paygate_startup makes no kind of its own"
    starts = importlib.import_module(module).STARTS
    assert starts == [("picky", {}), ("picky", {}), ("picky", {"processor": "test"})]


def test_paygate_startup_raising_anything_is_reported_with_its_type():
    class Crashes:
        @hookimpl
        def paygate_startup(self, context):
            return context.config["missing"]

    with pytest.raises(PluginError, match=r"'Crashes' failed in paygate_startup: KeyError"):
        load_plugins(make_settings(), entry_points=False, extra=[Crashes()])


def test_paygate_startup_is_not_called_for_a_plugin_whose_registration_failed():
    class Both:
        started = 0

        @hookimpl
        def paygate_register_observers(self, register):
            raise PluginError("set PAYGATE_PLUGIN_BOTH_URL")

        @hookimpl
        def paygate_startup(self):
            Both.started += 1

    plugins = load_plugins(make_settings(), entry_points=False, extra=[Both()], tolerant=True)
    (failure,) = plugins.failures
    assert (failure.name, failure.stage) == ("Both", "register")
    assert "paygate_startup" in failure.hooks and Both.started == 0
