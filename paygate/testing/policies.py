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
    call (it runs while the payment row is locked).
    """

    max_seconds = 0.05

    def make_policy(self) -> object:
        raise NotImplementedError(f"{type(self).__name__} must implement make_policy()")

    def allowed_refund(self) -> RefundCase:
        return RefundCase(amount=10000, refund=1000, reason="requested by customer")

    def denied_refund(self) -> RefundCase | None:
        return None

    # -- helpers ----------------------------------------------------------------------------

    def make_payment(self, case: RefundCase, **changes: Any) -> Payment:
        """A successful payment as the record holds it when the policy is asked."""
        payment = Payment(
            id=new_id("pay_"),
            merchant_id="00000000-0000-4000-8000-000000000001",
            order_id=new_id("order_"),
            amount=case.amount,
            currency=case.currency,
            method=str(case.method.get("method", "upi")),
            status=PaymentStatus.SUCCESS,
            vpa=case.method.get("vpa"),
            captured=True,
            amount_refunded=case.refunded_before,
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        return replace(payment, **changes)

    def ask(
        self,
        policy: object,
        case: RefundCase,
        settings: Settings,
        payment: Payment | None = None,
    ) -> RefundDenied | None:
        """The policy's answer for ``case``, asked as the gateway asks it (each argument the
        implementation names, ``settings`` and ``context`` included), on its own: no other
        policy is consulted."""
        pm = new_plugin_manager()
        name = pm.register(policy) or ""
        plugins = Plugins(pm=pm, settings=settings)
        payment = payment or self.make_payment(case)
        request = RefundRequest(payment.id, case.refund_amount(payment), case.reason)
        available = {
            "payment": payment,
            "refund_request": request,
            "refunded_amount": payment.amount_refunded,
            "settings": settings,
            "context": plugins.context_for(name),
        }
        impls = hook_implementations(pm, policy)
        assert impls, f"{policy!r} has no @hookimpl {HOOK}"
        for impl in reversed(impls):  # pluggy's order
            answer: Any = impl.function(*[available[arg] for arg in impl.argnames])
            if answer is not None:
                return answer
        return None

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

    def test_implements_the_hook_as_specified(self):
        pm = new_plugin_manager()
        policy = self.make_policy()
        try:
            pm.register(policy)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise AssertionError(
                f"the policy does not match the hook specification: {exc}"
            ) from exc
        assert hook_implementations(pm, policy), f"no @hookimpl {HOOK}"

    def test_an_allowed_refund_raises_no_objection(self, paygate_settings: Settings):
        case = self.allowed_refund()
        assert self.ask(self.make_policy(), case, paygate_settings) is None

    def test_a_denial_is_refund_denied_with_a_reason(self, paygate_settings: Settings):
        case = self._denied_case()
        self._check_denial(self.ask(self.make_policy(), case, paygate_settings), case)

    def test_the_same_question_gets_the_same_answer(self, paygate_settings: Settings):
        """A policy keeps no state of its own between calls: a refund retried with the same
        idempotency key, or asked by another API process, is judged the same."""
        policy = self.make_policy()
        cases = [self.allowed_refund(), self.denied_refund()]
        for case in [c for c in cases if c is not None]:
            payment = self.make_payment(case)
            answers = [self.ask(policy, case, paygate_settings, payment) for _ in range(3)]
            answers.append(self.ask(self.make_policy(), case, paygate_settings, payment))
            assert all(answer == answers[0] for answer in answers), answers

    def test_is_fast(self, paygate_settings: Settings):
        policy = self.make_policy()
        cases = [self.allowed_refund(), self.denied_refund()]
        slowest = 0.0
        for case in [c for c in cases if c is not None]:
            payment = self.make_payment(case)
            for _ in range(10):
                started = time.perf_counter()
                self.ask(policy, case, paygate_settings, payment)
                slowest = max(slowest, time.perf_counter() - started)
        assert slowest < self.max_seconds, (
            f"one call took {slowest:.3f}s (max_seconds = {self.max_seconds}): the policy runs "
            "while the payment row is locked"
        )

    def _paid(self, gateway: Gateway, case: RefundCase) -> tuple[dict[str, Any], Payment]:
        """A payment settled through ``gateway`` with ``case.refunded_before`` refunded."""
        from ..services import merchants, payments

        paid = gateway.paid_payment(case.amount, case.method)
        assert paid["status"] == "success", f"the payment for {case} did not succeed: {paid}"
        if case.refunded_before:
            earlier = gateway.refund(paid["id"], case.refunded_before)
            assert earlier.status_code == 201, earlier.text
            gateway.run_jobs()
        owner = merchants.get(gateway.ctx, gateway.merchant.id)
        return paid, payments.get(gateway.ctx, owner, paid["id"])

    def test_a_gateway_refund_it_denies_is_a_400_with_its_reason_and_records_nothing(
        self, paygate_gateway: Gateway
    ):
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
        assert answer.status_code == 400, answer.text
        error = answer.json["error"]
        assert error["code"] == "BAD_REQUEST_ERROR", error
        assert error["description"] == expected.reason, error
        assert gateway.refunds(paid["id"]) == refunds_before, "a denied refund was recorded"
        assert gateway.events() == events_before, "a denied refund sent an event"
        assert gateway.payment(paid["id"])["amount_refunded"] == case.refunded_before

    def test_a_gateway_refund_it_allows_goes_through(self, paygate_gateway: Gateway):
        gateway = paygate_gateway
        case = self.allowed_refund()
        with gateway.registered(self.make_policy()):
            paid, record = self._paid(gateway, case)
            amount = case.refund_amount(record)
            answer = gateway.refund(paid["id"], amount, reason=case.reason)
            assert answer.status_code == 201, answer.text
            gateway.run_jobs()
        refund = gateway.get_refund(answer.json["id"])
        assert refund["status"] == "processed", refund
        assert refund["amount"] == amount
        assert gateway.payment(paid["id"])["amount_refunded"] == case.refunded_before + amount
