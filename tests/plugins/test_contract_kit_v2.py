"""The contract kit's version 2 checks catch what they are for: a token that carries the card,
a buyer action without an absolute URL, a forged callback accepted, a settings declaration the
config does not satisfy; and ``sync`` gets the payment with the last reference the processor
returned (docs/plugins.md says so)."""

from __future__ import annotations

import pytest

from paygate import (
    CallbackTarget,
    ChargeResult,
    ProcessorSetting,
    RefundResult,
    TokenResult,
)
from paygate.testing import ProcessorContract, call_with_config, takes_config


class Vault:
    """A well-behaved v2 processor: tokenizes, asks one buyer action, reads callbacks 'signed'
    with the merchant's ``secret`` setting (a toy signature: the secret and the body); decides from the reference sync gets."""

    name = "vault"
    methods = frozenset({"card"})
    supports_partial_refund = True
    supports_manual_capture = True
    currencies = frozenset({"INR"})
    min_amount = 100
    max_amount = None
    settings = (ProcessorSetting("secret", secret=True),)
    approved: dict[str, bool] = {}  # the "bank": reference -> the buyer's choice

    def tokenize(self, request):
        return TokenResult.ok("vt_" + request.idempotency_key)

    def charge(self, request):
        assert request.token == "vt_" + request.payment.id, "the charge carries the token"
        reference = "ref_" + request.payment.id
        return ChargeResult.action_required(
            f"https://bank.example/3ds/{reference}", 0.01, reference
        )

    def sync(self, payment, config):
        reference = payment.processor_reference
        assert reference == "ref_" + payment.id, f"sync got reference {reference!r}"
        if reference not in self.approved:
            return ChargeResult.pending(0.01, reference)
        if self.approved[reference]:
            return ChargeResult.success(reference)
        return ChargeResult.failed("AUTHENTICATION_FAILED", "3-D Secure failed", reference)

    def capture(self, payment, amount, config):
        return ChargeResult.success(payment.processor_reference)

    def release(self, payment, config):
        return ChargeResult.success(payment.processor_reference)

    def refund(self, payment, refund, config):
        return RefundResult.processed("rf_" + refund.id)

    def callback_target(self, request):
        return CallbackTarget(payment_id=request.body.decode().strip().split(":")[1])

    def read_callback(self, request, config):
        if request.headers.get("x-signature") != f"{config['secret']}:{request.body.decode()}":
            return None
        return ChargeResult.success("ref_" + request.body.decode().split(":")[1])


class VaultContract(ProcessorContract):
    settle_timeout = 2.0

    def make_processor(self):
        return Vault()

    def make_config(self, processor):
        return {"secret": "s3cret-value"}

    def complete_action(self, processor, payment, action, approve=True):
        Vault.approved[action.url.rsplit("/", 1)[1]] = approve

    def make_callback(self, processor, payment):
        from paygate import CallbackRequest

        body = f"paid:{payment.id}"
        return CallbackRequest(body.encode(), {"x-signature": f"s3cret-value:{body}"})


class TestAWellBehavedV2ProcessorPassesTheKit(VaultContract):
    pass


def test_the_kit_fails_a_token_that_carries_the_card_number():
    class Leaky(VaultContract):
        def make_processor(self):
            vault = Vault()
            vault.tokenize = lambda r: TokenResult.ok("tok_" + r.details.card.number)
            return vault

    with pytest.raises(AssertionError, match="carries the card number"):
        Leaky().test_tokenize_answers_an_opaque_token_for_every_method()


def test_the_kit_fails_a_refusal_without_a_code():
    class Mute(VaultContract):
        def refused_details(self, processor):
            return self.method_details(processor, self.make_payment(processor))

        def make_processor(self):
            vault = Vault()
            vault.tokenize = lambda r: TokenResult(error_code="", error_description="no")
            return vault

    with pytest.raises(AssertionError, match="a refusal needs its error_code"):
        Mute().test_tokenize_refuses_with_a_code()


def test_the_kit_fails_a_buyer_action_with_a_relative_url():
    class Relative(VaultContract):
        def make_processor(self):
            vault = Vault()
            vault.charge = lambda r: ChargeResult.action_required("/3ds/x", reference="ref_x")
            return vault

    with pytest.raises(AssertionError, match="absolute http"):
        Relative().test_charge_answers_a_valid_result_for_every_method()


def test_the_kit_fails_a_processor_that_accepts_a_forged_callback():
    class Gullible(VaultContract):
        def make_processor(self):
            vault = Vault()
            vault.read_callback = lambda request, config: ChargeResult.success()
            return vault

    with pytest.raises(AssertionError, match="forged callback 0 was accepted"):
        Gullible().test_a_forged_callback_is_refused()


def test_the_kit_fails_a_config_that_misses_a_required_setting():
    class Unconfigured(VaultContract):
        def make_config(self, processor):
            return {}

    with pytest.raises(AssertionError, match="lacks the required setting 'secret'"):
        Unconfigured().test_settings_are_declared_well_and_the_config_satisfies_them()


def test_sync_gets_the_last_reference_the_processor_returned():
    # Vault.sync asserts it: without the reference, the kit's own run would fail.
    payment, result = VaultContract().settled_payment(Vault())
    assert payment.processor_reference == "ref_" + payment.id == result.reference


def test_config_is_passed_only_to_operations_that_name_it():
    seen = []

    def v1(payment):
        seen.append(("v1", payment))

    def v2(payment, config):
        seen.append(("v2", config))

    def loose(payment, **kwargs):
        seen.append(("kw", kwargs))

    assert not takes_config(v1) and takes_config(v2) and takes_config(loose)
    for operation in (v1, v2, loose):
        call_with_config(operation, "p", config={"k": "v"})
    assert seen == [("v1", "p"), ("v2", {"k": "v"}), ("kw", {"config": {"k": "v"}})]


def test_the_kit_fails_a_settings_declaration_the_gateway_would_refuse():
    class Twice(VaultContract):
        def make_processor(self):
            vault = Vault()
            vault.settings = (ProcessorSetting("secret"), ProcessorSetting("secret"))
            return vault

    with pytest.raises(AssertionError, match="declared twice"):
        Twice().test_settings_are_declared_well_and_the_config_satisfies_them()


def test_a_v1_processor_with_an_unrelated_settings_attribute_is_not_checked_for_them():
    class Legacy(VaultContract):
        def make_processor(self):
            vault = Vault()
            vault.settings = object()  # e.g. the gateway's Settings, kept by a v1 processor
            return vault

    with pytest.raises(pytest.skip.Exception):
        Legacy().test_settings_are_declared_well_and_the_config_satisfies_them()
