"""The one adapter every processor call goes through (paygate.services.processors): the
merchant's ``config`` reaches v2 operations, a v1 processor is called exactly as before."""

from __future__ import annotations

from dataclasses import dataclass, field

from paygate import ChargeRequest, ChargeResult, Payment, Refund, RefundResult
from paygate.config import TEST_MERCHANT_ID
from paygate.services import merchants, payments, processor_configs, processors, refunds
from paygate.testing import register_plugin
from paygate.types import PaymentStatus, ProcessorSetting, RefundStatus
from tests.fixtures import AUTH
from tests.plugins.helpers import ProvidesProcessors, create_payment


@dataclass
class V1Bank:
    """Today's API: positional operations, no ``config`` anywhere."""

    name: str = "v1bank"
    methods: frozenset[str] = frozenset({"upi", "card"})
    supports_partial_refund: bool = True
    supports_manual_capture: bool = False
    calls: list = field(default_factory=list)

    def charge(self, request):
        self.calls.append(("charge", request.config))
        return ChargeResult.success()

    def capture(self, payment, amount):
        self.calls.append(("capture", amount))
        return ChargeResult.success()

    def refund(self, payment, refund):
        self.calls.append(("refund", refund.id))
        return RefundResult.processed()

    def sync(self, payment):
        self.calls.append(("sync", payment.id))
        return ChargeResult.success()


@dataclass
class V2Bank(V1Bank):
    name: str = "v2bank"
    settings: tuple = (ProcessorSetting("api_key", secret=True),)

    def capture(self, payment, amount, config):
        self.calls.append(("capture", dict(config)))
        return ChargeResult.success()

    def refund(self, payment, refund, *, config=None):
        self.calls.append(("refund", dict(config)))
        return RefundResult.processed()

    def sync(self, payment, **kwargs):
        self.calls.append(("sync", dict(kwargs["config"])))
        return ChargeResult.success()

    def release(self, payment, config):
        self.calls.append(("release", dict(config)))
        return ChargeResult.success()


def a_payment(processor: str) -> Payment:
    return Payment(
        id="pay_x",
        merchant_id="m1",
        order_id="order_x",
        amount=100,
        currency="INR",
        method="upi",
        status=PaymentStatus.SUCCESS,
        processor=processor,
    )


def test_config_is_passed_only_to_methods_that_name_it():
    payment = a_payment("v2bank")
    refund = Refund("rfnd_x", payment.id, "m1", 100, None, RefundStatus.PENDING)
    config = {"api_key": "k1"}
    v2 = V2Bank()
    bound = processors.Bound(None, v2, "m1", config)
    bound.charge(ChargeRequest(payment=payment, idempotency_key=payment.id))
    bound.capture(payment, 50)
    bound.refund(payment, refund)
    bound.sync(payment)
    bound.release(payment)
    assert v2.calls == [
        ("charge", config),
        ("capture", config),
        ("refund", config),
        ("sync", config),
        ("release", config),
    ]
    assert bound.has("release") and not bound.has("tokenize")

    v1 = V1Bank()
    bound = processors.Bound(None, v1, "m1", config)
    bound.capture(payment, 50)
    bound.refund(payment, refund)
    bound.sync(payment)
    assert v1.calls == [("capture", 50), ("refund", "rfnd_x"), ("sync", "pay_x")]
    assert not bound.has("release")


def test_signatures_are_inspected_once_per_function():
    processors._TAKES_CONFIG.clear()
    for _ in range(3):
        processors.Bound(None, V2Bank(), "m1", {}).sync(a_payment("v2bank"))
        processors.Bound(None, V1Bank(), "m1", {}).sync(a_payment("v1bank"))
    assert processors._TAKES_CONFIG == {V2Bank.sync: True, V1Bank.sync: False}


def test_a_processor_without_settings_reads_no_configuration(ctx):
    bound = processors.for_merchant(ctx, TEST_MERCHANT_ID, "test")
    assert bound.config == {} and bound.name == "test"


def test_worker_and_refunds_go_through_the_adapter(ctx, api):
    for bank in (V1Bank(), V2Bank()):
        with register_plugin(ctx, ProvidesProcessors(bank)):
            merchants.set_processor(ctx, TEST_MERCHANT_ID, bank.name)
            if isinstance(bank, V2Bank):
                processor_configs.set_values(
                    ctx, TEST_MERCHANT_ID, bank.name, {"api_key": "sk_v2bank"}, actor="test"
                )
            created_payment = create_payment(api, 10000)
            assert created_payment.status_code == 201, created_payment.text
            payment_id = created_payment.json["id"]
            assert payments.process(ctx, payment_id) == "success"
            path = f"/api/v1/payments/{payment_id}/refunds"
            created = api.simulate_post(path, json={"amount": 4000}, headers=AUTH)
            assert created.status_code == 201, created.text
            assert refunds.process(ctx, created.json["id"]) == "processed"
            merchants.set_processor(ctx, TEST_MERCHANT_ID, "test")
        kinds = [call[0] for call in bank.calls]
        assert kinds == ["charge", "refund"]
        if isinstance(bank, V2Bank):
            assert bank.calls[1] == ("refund", {"api_key": "sk_v2bank"})  # config= was passed
        else:
            assert bank.calls[1] == ("refund", created.json["id"])
