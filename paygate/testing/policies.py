"""``RefundPolicyContract``: the checks every refund policy (``paygate_refund_policy``) must
pass, for authors to re-run.

A refund policy is asked, while the payment row is locked inside the refund transaction,
whether a refund may be created: it answers None (no objection) or ``RefundDenied(reason)``,
which the merchant gets as a 400 with the reason. So it must answer one of the two, fast,
the same way every time it is asked the same thing, and write nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pluggy

from ..config import Settings
from ..plugins import Plugins, new_plugin_manager
from ..types import Payment, PaymentStatus, RefundDenied, RefundRequest
from .processors import new_id

if TYPE_CHECKING:
    from .gateway import Gateway

HOOK = "paygate_refund_policy"
# The merchant of the kit's payments when the scope in force names none.
KIT_MERCHANT_ID = "00000000-0000-4000-8000-000000000001"


def hook_implementations(pm: pluggy.PluginManager, plugin: object) -> list[pluggy.HookImpl]:
    """``plugin``'s implementations of the refund-policy hook, in pluggy's calling order
    reversed (registration order)."""
    return [
        impl
        for caller in pm.get_hookcallers(plugin) or []
        if caller.name == HOOK
        for impl in caller.get_hookimpls()
        if impl.plugin is plugin
    ]


def policy_name(policy: object) -> str:
    """The name a policy object is registered under when the contract names none: a
    module's name, else its class's (as ``load_plugins(extra=...)`` names it)."""
    return getattr(policy, "__name__", None) or type(policy).__name__


@dataclass(frozen=True)
class RefundCase:
    """A refund a merchant asks for: of a successful payment of ``amount`` (minor units, in
    ``currency``, paid with ``method``: the method part of a payment body) after
    ``refunded_before`` was already refunded, ``refund`` more (None: all that is left) with
    ``reason``."""

    amount: int = 10000
    refund: int | None = None
    reason: str | None = None
    refunded_before: int = 0
    currency: str = "INR"
    method: Mapping[str, Any] = field(
        default_factory=lambda: {"method": "upi", "vpa": "success@test"}
    )

    def refund_amount(self, payment: Payment) -> int:
        return payment.refundable_amount if self.refund is None else self.refund


class RefundPolicyContract:
    """What every refund policy must do. Subclass it as
    ``class TestMyPolicy(RefundPolicyContract)`` and implement ``make_policy()`` (the module or
    object holding your ``@hookimpl def paygate_refund_policy``).

    ``allowed_refund()`` is a refund your policy lets through (by default 10 of a 100 rupee
    UPI payment), ``denied_refund()`` one it refuses (None, the default, skips the checks
    of a denial: say in your test why your policy never denies). ``max_seconds`` bounds one
    call (it runs while the payment row is locked). ``plugin_name`` is the name the gateway
    knows the plugin by (its entry-point name; None: the module's name): its
    ``PAYGATE_PLUGIN_<NAME>_*`` configuration, and the operator's scope, apply under it.

    Scope and order: the policy is asked through the gateway's call site, so a payment outside
    its scope is not put to it. The scope is the one in force (:meth:`scope`, as the gateway
    computes it: the operator's ``PAYGATE_PLUGIN_<NAME>_MERCHANTS`` / ``_PROCESSORS``, ``*``
    lifting a limit, else the policy's ``paygate_policy_processors``); the kit's payments are of
    a merchant and through a processor in it (the first, by name, of each limited one). In the
    checks through ``paygate_gateway`` it is registered for the test, so it speaks before every
    installed and built-in policy, unless ``PAYGATE_REFUND_POLICY_ORDER`` says otherwise; those
    checks skip when the scope in force leaves out the built-in test processor or the kit
    gateway's merchant.
    """

    max_seconds = 0.05
    plugin_name: str | None = None

    def make_policy(self) -> object:
        raise NotImplementedError(f"{type(self).__name__} must implement make_policy()")

    def allowed_refund(self) -> RefundCase:
        return RefundCase(amount=10000, refund=1000, reason="requested by customer")

    def denied_refund(self) -> RefundCase | None:
        return None

    # -- helpers ----------------------------------------------------------------------------

    def make_payment(
        self, case: RefundCase, settings: Settings | None = None, **changes: Any
    ) -> Payment:
        """A successful payment as the record holds it when the policy is asked: of a merchant
        and through a processor in the scope in force under ``settings`` (None: the scope the
        policy declares, no operator settings)."""
        merchants, processors = self.scope(settings or Settings.from_env({}))
        payment = Payment(
            id=new_id("pay_"),
            merchant_id=sorted(merchants)[0] if merchants else KIT_MERCHANT_ID,
            order_id=new_id("order_"),
            amount=case.amount,
            currency=case.currency,
            method=str(case.method.get("method", "upi")),
            status=PaymentStatus.SUCCESS,
            vpa=case.method.get("vpa"),
            captured=True,
            amount_refunded=case.refunded_before,
            processor=sorted(processors)[0] if processors else "test",
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        return replace(payment, **changes)

    def name(self, policy: object | None = None) -> str:
        """The plugin name the policy is known by: :attr:`plugin_name`, else its own name."""
        return self.plugin_name or policy_name(self.make_policy() if policy is None else policy)

    def plugins_with(self, policy: object, settings: Settings) -> Plugins:
        """The gateway's plugin manager with ``policy`` as its only plugin, under
        :meth:`name`."""
        pm = new_plugin_manager()
        pm.register(policy, name=self.name(policy))
        assert hook_implementations(pm, policy), f"{policy!r} has no @hookimpl {HOOK}"
        return Plugins(pm=pm, settings=settings)

    def scope(self, settings: Settings) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """The merchant ids and processor names the policy is asked about under ``settings``
        (None: all), exactly as the gateway computes them (``Plugins.policy_scope``)."""
        policy = self.make_policy()
        return self.plugins_with(policy, settings).policy_scope(self.name(policy))

    def processor_in_scope(self, settings: Settings | None = None) -> str:
        """The processor of the kit's payments: the first (by name) of the processors the
        policy is limited to under ``settings`` (None: its declaration alone), else the
        built-in test processor."""
        return self.make_payment(self.allowed_refund(), settings).processor

    def ask(
        self,
        policy: object,
        case: RefundCase,
        settings: Settings,
        payment: Payment | None = None,
    ) -> RefundDenied | None:
        """The policy's answer for ``case``, asked through the gateway's own call site
        (``Plugins.refund_policy``) with this policy as the only one registered, under
        :attr:`plugin_name`: its scope is honoured (asked about a payment of a merchant or
        processor it is not limited to, it is not called: None), and it gets the arguments it
        names, ``context`` its own. No other policy is consulted; the order among several is
        the gateway's, exercised by the checks through ``paygate_gateway``."""
        plugins = self.plugins_with(policy, settings)
        payment = payment or self.make_payment(case, settings)
        request = RefundRequest(payment.id, case.refund_amount(payment), case.reason)
        return plugins.refund_policy(payment, request, payment.amount_refunded)

    def _check_denial(self, answer: object, case: RefundCase) -> RefundDenied:
        assert isinstance(answer, RefundDenied), (
            f"denied_refund() {case} must be answered RefundDenied(reason), got {answer!r}"
        )
        assert isinstance(answer.reason, str) and answer.reason.strip(), (
            "a denial needs a reason: the merchant is shown it"
        )
        return answer

    def _denied_case(self) -> RefundCase:
        import pytest

        case = self.denied_refund()
        if case is None:
            pytest.skip("denied_refund() is None: no refund this policy refuses was given")
        return case

    # -- the checks -------------------------------------------------------------------------

    def test_implements_the_hook_as_specified(self) -> None:
        pm = new_plugin_manager()
        policy = self.make_policy()
        try:
            pm.register(policy)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise AssertionError(
                f"the policy does not match the hook specification: {exc}"
            ) from exc
        assert hook_implementations(pm, policy), f"no @hookimpl {HOOK}"

    def test_an_allowed_refund_raises_no_objection(self, paygate_settings: Settings) -> None:
        case = self.allowed_refund()
        answer = self.ask(self.make_policy(), case, paygate_settings)
        assert answer is None, f"allowed_refund() {case} must be answered None, got {answer!r}"

    def test_a_denial_is_refund_denied_with_a_reason(self, paygate_settings: Settings) -> None:
        case = self._denied_case()
        self._check_denial(self.ask(self.make_policy(), case, paygate_settings), case)

    def test_the_same_question_gets_the_same_answer(self, paygate_settings: Settings) -> None:
        """A policy keeps no state of its own between calls: a refund retried with the same
        idempotency key, or asked by another API process, is judged the same."""
        policy = self.make_policy()
        cases = [self.allowed_refund(), self.denied_refund()]
        for case in [c for c in cases if c is not None]:
            payment = self.make_payment(case, paygate_settings)
            answers = [self.ask(policy, case, paygate_settings, payment) for _ in range(3)]
            answers.append(self.ask(self.make_policy(), case, paygate_settings, payment))
            assert all(answer == answers[0] for answer in answers), (
                f"{case} was answered differently when asked again (the last by a new policy "
                f"object): {answers!r}"
            )

    def test_is_fast(self, paygate_settings: Settings) -> None:
        policy = self.make_policy()
        cases = [self.allowed_refund(), self.denied_refund()]
        slowest = 0.0
        for case in [c for c in cases if c is not None]:
            payment = self.make_payment(case, paygate_settings)
            for _ in range(10):
                started = time.perf_counter()
                self.ask(policy, case, paygate_settings, payment)
                slowest = max(slowest, time.perf_counter() - started)
        assert slowest < self.max_seconds, (
            f"one call took {slowest:.3f}s (max_seconds = {self.max_seconds}): the policy runs "
            "while the payment row is locked"
        )

    def test_a_payment_outside_its_declared_processors_is_not_asked(
        self, paygate_settings: Settings
    ) -> None:
        """A policy limited to some processors (its ``paygate_policy_processors``, or the
        operator's ``PAYGATE_PLUGIN_<NAME>_PROCESSORS``) is not asked about another processor's
        payment: the refund it would deny goes through."""
        import pytest

        _, processors = self.scope(paygate_settings)
        if processors is None:
            pytest.skip(
                "the scope in force limits the policy to no processors: it sees every payment"
            )
        case = self._denied_case()
        elsewhere = self.make_payment(
            case, paygate_settings, processor="kit-processor-out-of-scope"
        )
        answer = self.ask(self.make_policy(), case, paygate_settings, elsewhere)
        assert answer is None, (
            f"the policy is limited to processors {sorted(processors)}, yet a payment through "
            f"another processor was answered {answer!r}: it must not be asked"
        )

    def _paid(self, gateway: Gateway, case: RefundCase) -> tuple[dict[str, Any], Payment]:
        """A payment settled through ``gateway`` with ``case.refunded_before`` refunded."""
        import pytest

        from ..services import merchants, payments

        in_merchants, processors = self.scope(gateway.ctx.settings)
        if processors is not None and "test" not in processors:
            pytest.skip(
                f"the policy is limited to processors {sorted(processors)}: "
                "the kit's gateway pays through the built-in test processor"
            )
        if in_merchants is not None and gateway.merchant.id not in in_merchants:
            pytest.skip(
                f"the policy is limited to merchants {sorted(in_merchants)}: the kit's gateway "
                f"pays as merchant {gateway.merchant.id}"
            )
        paid = gateway.paid_payment(case.amount, case.method)
        assert paid["status"] == "success", f"the payment for {case} did not succeed: {paid}"
        if case.refunded_before:
            earlier = gateway.refund(paid["id"], case.refunded_before)
            assert earlier.status_code == 201, (
                f"the earlier refund of {case.refunded_before} was refused: {earlier.text}"
            )
            gateway.run_jobs()
        owner = merchants.get(gateway.ctx, gateway.merchant.id)
        return paid, payments.get(gateway.ctx, owner, paid["id"])

    def test_a_gateway_refund_it_denies_is_a_400_with_its_reason_and_records_nothing(
        self, paygate_gateway: Gateway
    ) -> None:
        gateway = paygate_gateway
        case = self._denied_case()
        policy = self.make_policy()
        with gateway.registered(policy):
            paid, record = self._paid(gateway, case)
            expected = self._check_denial(
                self.ask(policy, case, gateway.ctx.settings, record), case
            )
            refunds_before, events_before = gateway.refunds(paid["id"]), gateway.events()
            answer = gateway.refund(paid["id"], case.refund_amount(record), reason=case.reason)
        assert answer.status_code == 400, f"a denied refund must be a 400, got {answer.text}"
        error = answer.json["error"]
        assert error["code"] == "BAD_REQUEST_ERROR", f"a denied refund's error: {error}"
        assert error["description"] == expected.reason, (
            f"the merchant must be shown the policy's reason {expected.reason!r}: {error}"
        )
        assert gateway.refunds(paid["id"]) == refunds_before, "a denied refund was recorded"
        assert gateway.events() == events_before, "a denied refund sent an event"
        refunded = gateway.payment(paid["id"])["amount_refunded"]
        assert refunded == case.refunded_before, (
            f"a denied refund changed amount_refunded: {case.refunded_before} -> {refunded}"
        )

    def test_a_gateway_refund_it_allows_goes_through(self, paygate_gateway: Gateway) -> None:
        gateway = paygate_gateway
        case = self.allowed_refund()
        with gateway.registered(self.make_policy()):
            paid, record = self._paid(gateway, case)
            amount = case.refund_amount(record)
            answer = gateway.refund(paid["id"], amount, reason=case.reason)
            assert answer.status_code == 201, f"an allowed refund was refused: {answer.text}"
            gateway.run_jobs()
        refund = gateway.get_refund(answer.json["id"])
        assert refund["status"] == "processed", f"the allowed refund was not processed: {refund}"
        assert refund["amount"] == amount, f"refunded {refund['amount']}, asked {amount}"
        refunded = gateway.payment(paid["id"])["amount_refunded"]
        assert refunded == case.refunded_before + amount, (
            f"amount_refunded is {refunded}, expected {case.refunded_before + amount}"
        )
