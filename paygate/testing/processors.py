"""``ProcessorContract``: the checks every processor plugin must pass, for authors to re-run."""

from __future__ import annotations

import inspect
import math
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from ..config import TEST_MERCHANT_ID
from ..plugins import declared_settings, settings_problem
from ..types import (
    CallbackRequest,
    CallbackTarget,
    CardDetails,
    ChargeRequest,
    ChargeResult,
    MethodDetails,
    NextAction,
    Outcome,
    Payment,
    PaymentStatus,
    Processor,
    ProcessorConfig,
    ProcessorSetting,
    Refund,
    RefundResult,
    RefundStatus,
    TokenizeRequest,
    TokenResult,
)

MAX_REFERENCE_LENGTH = 255  # the width of the record's processor_reference column
_ALPHABET = string.ascii_letters + string.digits
Answer = TypeVar("Answer", ChargeResult, RefundResult)


def new_id(prefix: str) -> str:
    """An id shaped like the gateway's (``pay_`` + 16 characters)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def check_answer(
    result: Any, expected: type[ChargeResult] | type[RefundResult], operation: str
) -> None:
    """Fail unless ``result`` is a well-formed ``expected`` (ChargeResult or RefundResult)."""
    assert isinstance(result, expected), (
        f"{operation} must return a {expected.__name__}, got {result!r}"
    )
    assert result.outcome in set(Outcome), f"{operation}: unknown outcome {result.outcome!r}"
    if result.outcome == Outcome.PENDING:
        wait = result.retry_after
        assert wait is None or (
            isinstance(wait, int | float) and math.isfinite(wait) and wait > 0
        ), f"{operation}: a pending answer's retry_after must be None or > 0 s, got {wait!r}"
    if result.outcome == Outcome.FAILED:
        for attr in ("error_code", "error_description"):
            value = getattr(result, attr)
            assert isinstance(value, str) and value, f"{operation}: a failure needs its {attr}"
    reference = result.reference
    assert reference is None or (
        isinstance(reference, str) and len(reference) <= MAX_REFERENCE_LENGTH
    ), f"{operation}: reference must be a string of at most 255 characters, got {reference!r}"


def takes_config(operation: Callable[..., Any]) -> bool:
    """Whether ``operation`` names a ``config`` parameter (or takes ``**kwargs``): the gateway
    passes ``config=`` only then, so a version 1 operation is called exactly as before."""
    try:
        parameters = inspect.signature(operation).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "config" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def call_with_config(operation: Callable[..., Any], *args: Any, config: ProcessorConfig) -> Any:
    """Call a processor operation as the gateway does: with ``config=`` when it takes one."""
    if takes_config(operation):
        return operation(*args, config=config)
    return operation(*args)


def check_next_action(result: ChargeResult, operation: str) -> None:
    """Fail unless a buyer action is well formed: pending, a redirect to an absolute URL."""
    action = result.next_action
    assert isinstance(action, NextAction), f"{operation}: next_action must be a NextAction"
    assert result.outcome == Outcome.PENDING, f"{operation}: a buyer action keeps it pending"
    assert action.type == "redirect", f"{operation}: next_action.type must be 'redirect'"
    url = urlsplit(action.url or "")
    assert url.scheme in ("http", "https") and url.netloc, (
        f"{operation}: next_action.url must be an absolute http(s) URL, got {action.url!r}"
    )


NETWORK_PREFIXES = {"visa": "4", "mastercard": "51", "rupay": "60", "amex": "37"}
# The usual test cards, for the network and last 4 they are known by.
KNOWN_TEST_CARDS = {
    ("visa", "4242"): "4242424242424242",
    ("visa", "1111"): "4111111111111111",
    ("mastercard", "4444"): "5555555555554444",
}


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def card_number(network: str, last4: str) -> str:
    """A Luhn-valid 16-digit test card number of ``network`` ending in ``last4`` (what the
    kit's payments record): the usual test card when there is one (``4242 4242 4242 4242``),
    else ``4000 0000 000X`` and the last 4, X making it Luhn-valid."""
    if (network, last4) in KNOWN_TEST_CARDS:
        return KNOWN_TEST_CARDS[network, last4]
    prefix = NETWORK_PREFIXES.get(network, "4")
    head = prefix + "0" * (11 - len(prefix))
    for digit in "0123456789":
        number = f"{head}{digit}{last4}"
        if luhn_valid(number):
            return number
    raise ValueError(f"no card number ends in {last4!r}")  # unreachable: one digit fits


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


class ProcessorContract:
    """What every processor must do. Subclass it as ``class TestMyProcessor(ProcessorContract)``.

    Implement :meth:`make_processor`. Override :meth:`succeeding_payment` when your processor
    does not approve :meth:`make_payment`'s default payment, and :meth:`declining_payment` to
    have the decline path checked too. Make the processor settle quickly in tests: every
    pending outcome must become final within ``settle_timeout`` seconds.

    Version 2 operations are checked when the processor has them (a version 1 processor passes
    unchanged): :meth:`make_config` gives the merchant's settings, :meth:`method_details` what
    the buyer typed (and :meth:`refused_details` what tokenization refuses),
    :meth:`complete_action` plays the buyer at a ``next_action`` URL, and
    :meth:`make_callback` returns a genuine notification from your PSP.
    """

    settle_timeout: float = 10.0
    #: the longest pause between two polls; longer ``retry_after`` hints are cut to it
    poll_interval: float = 0.25
    #: where the gateway sends a buyer back after a ``next_action`` (the checkout app)
    return_url_template: str = "https://checkout.example.com/checkout/return/{payment_id}"

    def make_processor(self) -> Processor:
        """A fresh processor instance, configured as a worker process would configure it."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_processor()")

    def make_config(self, processor: Processor) -> ProcessorConfig:
        """The merchant's values for ``processor.settings`` (what operators set with
        ``paygate processors configure``); handed to every operation as ``config``."""
        return {}

    def method_details(self, processor: Processor, payment: Payment) -> MethodDetails:
        """What the buyer typed for ``payment`` (given to ``tokenize``): a test card or VPA."""
        if payment.method == "card":
            network = payment.card_network or "visa"
            last4 = payment.card_last4 or "1111"
            card = CardDetails(
                number=card_number(network, last4),
                expiry_month=12,
                expiry_year=datetime.now(UTC).year + 3,
                cvv="123",
                holder_name="Asha Buyer",
                network=network,
                last4=last4,
            )
            return MethodDetails(method="card", card=card)
        return MethodDetails(method=payment.method, vpa=payment.vpa or "user@paytm")

    def refused_details(self, processor: Processor) -> MethodDetails | None:
        """Method details ``tokenize`` refuses (an expired card, an unknown VPA), or None to
        skip that check."""
        return None

    def complete_action(
        self, processor: Processor, payment: Payment, action: NextAction, approve: bool = True
    ) -> None:
        """Act as the buyer at ``action.url`` (approve or refuse 3-D Secure, a bank page...).
        Implement it when your processor answers ``ChargeResult.action_required``."""
        pytest.fail(
            f"{processor.name} asked for a buyer action ({action.url}): implement "
            f"{type(self).__name__}.complete_action() to act as the buyer"
        )

    def make_callback(self, processor: Processor, payment: Payment) -> CallbackRequest | None:
        """A genuine notification your PSP sent about ``payment`` (settled by the kit through
        :meth:`succeeding_payment`), as the gateway receives it: raw body, lower-case headers.
        None skips the genuine-callback check (forged callbacks are checked anyway)."""
        return None

    def make_payment(
        self, processor: Processor, method: str | None = None, **changes: Any
    ) -> Payment:
        """A new pending payment for ``processor``, as the record holds it."""
        method = method or sorted(processor.methods)[0]
        now = datetime.now(UTC)
        payment = Payment(
            id=new_id("pay_"),
            merchant_id=TEST_MERCHANT_ID,
            order_id=new_id("order_"),
            amount=50000,
            currency="INR",
            method=method,
            status=PaymentStatus.PENDING,
            processor=processor.name,
            vpa="user@paytm" if method == "upi" else None,
            card_network="visa" if method == "card" else None,
            card_last4="1111" if method == "card" else None,
            created_at=now,
            updated_at=now,
        )
        return replace(payment, **changes)

    def make_refund(self, payment: Payment, amount: int | None = None, **changes: Any) -> Refund:
        now = datetime.now(UTC)
        refund = Refund(
            id=new_id("rfnd_"),
            payment_id=payment.id,
            merchant_id=payment.merchant_id,
            amount=payment.amount if amount is None else amount,
            reason=None,
            status=RefundStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        return replace(refund, **changes)

    def succeeding_payment(self, processor: Processor) -> Payment:
        """A payment ``processor`` approves (default: :meth:`make_payment`)."""
        return self.make_payment(processor)

    def declining_payment(self, processor: Processor) -> Payment | None:
        """A payment ``processor`` declines, or None to skip the decline checks."""
        return None

    # -- how the gateway asks -----------------------------------------------------------------

    def settle(self, first: Callable[[], Answer], again: Callable[[], Answer], what: str) -> Answer:
        """Ask ``first``, then ``again`` while the answer is pending, as the worker does."""
        deadline = time.monotonic() + self.settle_timeout
        result = first()
        expected = ChargeResult if isinstance(result, ChargeResult) else RefundResult
        check_answer(result, expected, what)
        while result.outcome == Outcome.PENDING:
            assert time.monotonic() < deadline, (
                f"{what} still pending after {self.settle_timeout} s: make the processor settle "
                "faster in make_processor() or raise settle_timeout"
            )
            time.sleep(min(result.retry_after or self.poll_interval, self.poll_interval))
            result = again()
            check_answer(result, expected, what)
        return result

    def tokenized(self, processor: Processor, payment: Payment) -> Payment:
        """``payment`` with the token ``tokenize`` gave for its method details, as the gateway
        stores it at creation (unchanged for a processor without ``tokenize``)."""
        if not hasattr(processor, "tokenize"):
            return payment
        details = self.method_details(processor, payment)
        result = processor.tokenize(
            TokenizeRequest(
                details=details,
                merchant_id=payment.merchant_id,
                amount=payment.amount,
                currency=payment.currency,
                idempotency_key=payment.id,
                config=self.make_config(processor),
            )
        )
        check_token(result, details, "tokenize")
        assert result.token, f"tokenize refused {payment.method}: {result.error_code}"
        return replace(payment, method_token=result.token)

    def charge_request(self, processor: Processor, payment: Payment) -> ChargeRequest:
        return ChargeRequest(
            payment=payment,
            idempotency_key=payment.id,
            token=payment.method_token,
            config=self.make_config(processor),
            return_url=self.return_url_template.format(payment_id=payment.id),
        )

    def sync(self, processor: Processor, payment: Payment) -> ChargeResult:
        result: ChargeResult = call_with_config(
            processor.sync, payment, config=self.make_config(processor)
        )
        return result

    def run_charge(
        self, processor: Processor, payment: Payment, approve: bool = True
    ) -> tuple[Payment, ChargeResult]:
        """What the gateway does with a new payment: tokenize (v2), charge once, let the buyer
        act on a ``next_action``, then sync until the outcome is final. Every sync gets the
        payment as the record then holds it: with the last ``processor_reference`` the
        processor returned (and its token, and the pending ``next_action``). Returns that
        payment and the final answer."""
        if payment.method_token is None:
            payment = self.tokenized(processor, payment)
        first = processor.charge(self.charge_request(processor, payment))
        check_answer(first, ChargeResult, "charge")
        state: dict[str, Any] = {"payment": payment, "acted": False}

        def record(result: ChargeResult, what: str) -> ChargeResult:
            current = state["payment"]
            if result.next_action is not None:
                check_next_action(result, what)
            state["payment"] = replace(
                current,
                processor_reference=result.reference or current.processor_reference,
                next_action=result.next_action if result.outcome == Outcome.PENDING else None,
            )
            if result.next_action is not None and not state["acted"]:
                state["acted"] = True
                self.complete_action(processor, state["payment"], result.next_action, approve)
            return result

        result = self.settle(
            lambda: record(first, "charge"),
            lambda: record(self.sync(processor, state["payment"]), "sync"),
            "charge then sync",
        )
        final = state["payment"]
        status = (
            PaymentStatus.SUCCESS if result.outcome == Outcome.SUCCESS else PaymentStatus.FAILED
        )
        return replace(final, status=status, error_code=result.error_code), result

    def charge_until_final(self, processor: Processor, payment: Payment) -> ChargeResult:
        """Charge once, then sync until the outcome is final."""
        return self.run_charge(processor, payment)[1]

    def settled_payment(self, processor: Processor) -> tuple[Payment, ChargeResult]:
        payment, result = self.run_charge(processor, self.succeeding_payment(processor))
        assert result.outcome == Outcome.SUCCESS, (
            f"succeeding_payment() ended {result.outcome}: override it to return a payment your "
            "processor approves"
        )
        return payment, result

    def captured_payment(self, processor: Processor, amount: int | None = None) -> Payment:
        """A settled payment, captured (``amount``, default all) when the processor authorizes
        first (``supports_manual_capture``): what a refund is made against."""
        payment, _ = self.settled_payment(processor)
        if not processor.supports_manual_capture:
            return payment
        amount = payment.amount if amount is None else amount
        result = call_with_config(
            processor.capture, payment, amount, config=self.make_config(processor)
        )
        check_answer(result, ChargeResult, "capture")
        assert result.outcome == Outcome.SUCCESS, f"capture ended {result.outcome}"
        return replace(payment, captured=True, amount_captured=amount)

    def refund_until_final(
        self, processor: Processor, payment: Payment, refund: Refund
    ) -> RefundResult:
        config = self.make_config(processor)
        ask: Callable[[], RefundResult] = lambda: call_with_config(  # noqa: E731
            processor.refund, payment, refund, config=config
        )
        return self.settle(ask, ask, "refund")

    # -- the contract -------------------------------------------------------------------------

    def test_declares_name_methods_and_capabilities(self) -> None:
        processor = self.make_processor()
        assert isinstance(processor, Processor), "missing part of paygate.Processor"
        assert isinstance(processor.name, str) and processor.name.strip() == processor.name != ""
        methods: Any = processor.methods  # whatever the plugin set: checked here
        assert not isinstance(methods, str) and methods, "methods: a non-empty set of names"
        assert all(isinstance(m, str) and m for m in methods), f"bad methods {methods!r}"
        assert isinstance(processor.supports_partial_refund, bool)
        assert isinstance(processor.supports_manual_capture, bool)
        currencies = getattr(processor, "currencies", None)
        assert currencies is None or (
            not isinstance(currencies, str)
            and currencies
            and all(isinstance(c, str) and re.fullmatch(r"[A-Z]{3}", c) for c in currencies)
        ), f"currencies: None or a non-empty set of ISO 4217 codes, got {currencies!r}"
        low, high = getattr(processor, "min_amount", None), getattr(processor, "max_amount", None)
        for limit in (low, high):
            assert limit is None or (type(limit) is int and limit > 0), f"bad limit {limit!r}"
        assert low is None or high is None or low <= high, "min_amount above max_amount"

    def test_settings_are_declared_well_and_the_config_satisfies_them(self) -> None:
        processor = self.make_processor()
        if not isinstance(getattr(processor, "settings", None), list | tuple):
            # a version 1 processor may keep something else under that name (the gateway's
            # Settings): only a list or tuple is a declaration, as the gateway reads it
            pytest.skip("no settings: the processor takes no per-merchant configuration")
        problem = settings_problem(processor)  # what the gateway refuses at registration
        assert problem is None, f"settings: {problem}"
        declared = declared_settings(processor)
        names = [s.name for s in declared]
        assert len(names) == len(set(names)), f"settings declared twice: {names}"
        config = self.make_config(processor)
        assert isinstance(config, Mapping)
        for setting in declared:
            assert isinstance(setting, ProcessorSetting), f"{setting!r} is no ProcessorSetting"
            assert re.fullmatch(r"[a-z][a-z0-9_]*", setting.name), (
                f"setting name {setting.name!r}: lower case letters, digits and _"
            )
            assert setting.validate is None or callable(setting.validate)
            value = config.get(setting.name)
            if setting.required:
                assert value, f"make_config() lacks the required setting {setting.name!r}"
            if value is not None and setting.validate is not None:
                problem = setting.validate(value)
                assert problem is None, f"make_config()'s {setting.name}: {problem}"
                assert setting.validate("") is None or isinstance(setting.validate(""), str)

    def test_tokenize_answers_an_opaque_token_for_every_method(self) -> None:
        processor = self.make_processor()
        if not hasattr(processor, "tokenize"):
            pytest.skip("no tokenize: the processor never sees method details")
        for method in sorted(processor.methods):
            payment = self.tokenized(processor, self.make_payment(processor, method))
            assert payment.method_token

    def test_tokenize_refuses_with_a_code(self) -> None:
        processor: Any = self.make_processor()  # tokenize is optional (v2)
        details = self.refused_details(processor) if hasattr(processor, "tokenize") else None
        if details is None:
            pytest.skip("no tokenize, or refused_details() not provided")
        payment = self.make_payment(processor, details.method)
        result = processor.tokenize(
            TokenizeRequest(
                details=details,
                merchant_id=payment.merchant_id,
                amount=payment.amount,
                currency=payment.currency,
                idempotency_key=payment.id,
                config=self.make_config(processor),
            )
        )
        check_token(result, details, "tokenize (refused)")
        assert result.token is None, "refused_details() got a token"

    def test_charge_answers_a_valid_result_for_every_method(self) -> None:
        processor = self.make_processor()
        for method in sorted(processor.methods):
            payment = self.tokenized(processor, self.make_payment(processor, method))
            result = processor.charge(self.charge_request(processor, payment))
            check_answer(result, ChargeResult, f"charge ({method})")
            if result.next_action is not None:
                check_next_action(result, f"charge ({method})")

    def test_a_pending_charge_becomes_final_through_sync(self) -> None:
        processor = self.make_processor()
        result = self.charge_until_final(processor, self.succeeding_payment(processor))
        assert result.outcome in (Outcome.SUCCESS, Outcome.FAILED)

    def test_succeeding_payment_succeeds(self) -> None:
        payment, result = self.settled_payment(self.make_processor())
        assert payment.status == PaymentStatus.SUCCESS and result.outcome == Outcome.SUCCESS

    def test_declining_payment_fails_with_an_error_code(self) -> None:
        processor = self.make_processor()
        payment = self.declining_payment(processor)
        if payment is None:
            pytest.skip("declining_payment() not provided")
        result = self.charge_until_final(processor, payment)
        assert result.outcome == Outcome.FAILED, f"declining_payment() ended {result.outcome}"

    def test_a_refused_buyer_action_fails_the_payment(self) -> None:
        processor = self.make_processor()
        payment = self.tokenized(processor, self.succeeding_payment(processor))
        first = processor.charge(self.charge_request(processor, payment))
        if first.next_action is None:
            pytest.skip("the processor asks no buyer action for succeeding_payment()")
        payment, result = self.run_charge(processor, payment, approve=False)
        assert result.outcome == Outcome.FAILED, f"a refused action ended {result.outcome}"

    def test_a_final_outcome_never_changes(self) -> None:
        processor = self.make_processor()
        for payment in filter(
            None, (self.succeeding_payment(processor), self.declining_payment(processor))
        ):
            settled, first = self.run_charge(processor, payment)
            # the same idempotency key again: a job re-run after a crash
            _, repeated = self.run_charge(processor, settled)
            synced = self.sync(processor, settled)
            for later in (repeated, synced):
                assert (later.outcome, later.error_code) == (first.outcome, first.error_code), (
                    f"payment {payment.id} was {first.outcome}, later {later.outcome}"
                )

    def test_another_instance_gives_the_same_answer(self) -> None:
        """Several worker processes each build their own processor: they must agree."""
        one, other = self.make_processor(), self.make_processor()
        payment, first = self.run_charge(one, self.succeeding_payment(one))
        ask = lambda: self.sync(other, payment)  # noqa: E731
        seen = self.settle(ask, ask, "sync")
        assert seen.outcome == first.outcome, f"one instance said {first.outcome}, another {seen}"

    def test_capture_answers_a_final_result(self) -> None:
        processor = self.make_processor()
        payment, _ = self.settled_payment(processor)
        result = call_with_config(
            processor.capture, payment, payment.amount, config=self.make_config(processor)
        )
        check_answer(result, ChargeResult, "capture")
        assert result.outcome != Outcome.PENDING, "capture must answer success or failed"

    def test_a_partial_capture_succeeds_and_limits_refunds(self) -> None:
        processor = self.make_processor()
        if not processor.supports_manual_capture:
            pytest.skip("supports_manual_capture is False: charge captures")
        payment = self.captured_payment(processor, amount=self.make_payment(processor).amount // 2)
        if processor.supports_partial_refund:
            refund = self.make_refund(payment, payment.amount_captured)
            result = self.refund_until_final(processor, payment, refund)
            assert result.outcome == Outcome.SUCCESS, f"refund of the capture: {result.outcome}"

    def test_release_gives_back_an_authorization(self) -> None:
        processor = self.make_processor()
        if not (processor.supports_manual_capture and hasattr(processor, "release")):
            pytest.skip("no release, or supports_manual_capture is False")
        payment, _ = self.settled_payment(processor)
        config = self.make_config(processor)
        result = call_with_config(processor.release, payment, config=config)
        check_answer(result, ChargeResult, "release")
        assert result.outcome == Outcome.SUCCESS, f"release ended {result.outcome}"
        again = call_with_config(processor.release, payment, config=config)
        assert again.outcome == Outcome.SUCCESS, "releasing twice must answer the same"

    def test_full_refund_is_processed_and_repeats_give_the_same_answer(self) -> None:
        processor = self.make_processor()
        payment = self.captured_payment(processor)
        refund = self.make_refund(payment)
        result = self.refund_until_final(processor, payment, refund)
        assert result.outcome == Outcome.SUCCESS, f"full refund ended {result.outcome}"
        # the same refund id: no second refund
        again = call_with_config(
            processor.refund, payment, refund, config=self.make_config(processor)
        )
        assert again.outcome == Outcome.SUCCESS

    def test_partial_refund_when_supported(self) -> None:
        processor = self.make_processor()
        if not processor.supports_partial_refund:
            pytest.skip("supports_partial_refund is False: the core refunds only in full")
        payment = self.captured_payment(processor)
        refund = self.make_refund(payment, payment.amount // 2)
        assert self.refund_until_final(processor, payment, refund).outcome == Outcome.SUCCESS

    def test_a_forged_callback_is_refused(self) -> None:
        processor = self.make_processor()
        if not hasattr(processor, "read_callback"):
            pytest.skip("no read_callback: the processor takes no callbacks")
        payment, _ = self.settled_payment(processor)
        genuine = self.make_callback(processor, payment)
        claim = (
            b'{"id": "evt_forged", "payment_id": "%s", "status": "succeeded", '
            b'"data": {"object": "charge", "idempotency_key": "%s", "status": "succeeded"}}'
        ) % (payment.id.encode(), payment.id.encode())
        forged = [CallbackRequest(body=claim, headers={}), CallbackRequest(body=b"", headers={})]
        if genuine is not None:
            tampered = genuine.body[:1] + b" " + genuine.body[1:]  # still JSON, not signed
            forged += [
                CallbackRequest(body=tampered, headers=genuine.headers),
                CallbackRequest(body=genuine.body, headers={}),
                CallbackRequest(body=claim, headers=genuine.headers),
            ]
        config = self.make_config(processor)
        for n, request in enumerate(forged):
            try:
                result = call_with_config(processor.read_callback, request, config=config)
            except Exception:  # noqa: BLE001 - raising is a refusal too
                continue
            assert result is None, f"forged callback {n} was accepted: {result!r}"

    def test_a_genuine_callback_is_located_and_read(self) -> None:
        processor: Any = self.make_processor()  # callbacks are optional (v2)
        if not hasattr(processor, "read_callback"):
            pytest.skip("no read_callback: the processor takes no callbacks")
        payment, final = self.settled_payment(processor)
        request = self.make_callback(processor, payment)
        if request is None:
            pytest.skip("make_callback() not provided")
        target = processor.callback_target(request)
        assert isinstance(target, CallbackTarget), "callback_target must locate the record"
        assert target.payment_id == payment.id, f"callback about {target}, not {payment.id}"
        assert target.event_id is None or isinstance(target.event_id, str)
        result = call_with_config(
            processor.read_callback, request, config=self.make_config(processor)
        )
        check_answer(result, ChargeResult, "read_callback")
        if result.outcome != Outcome.PENDING:
            assert result.outcome == final.outcome, f"callback said {result.outcome}"


def check_token(result: Any, details: MethodDetails, operation: str) -> None:
    """Fail unless ``result`` is a well-formed :class:`TokenResult`: an opaque token of at most
    255 characters that does not carry the card number or its CVV, or a refusal with a code and a
    description (and no token)."""
    assert isinstance(result, TokenResult), f"{operation} must return a TokenResult"
    if result.token is None:
        for attr in ("error_code", "error_description"):
            value = getattr(result, attr)
            assert isinstance(value, str) and value, f"{operation}: a refusal needs its {attr}"
        return
    token = result.token
    assert isinstance(token, str) and 0 < len(token) <= MAX_REFERENCE_LENGTH, (
        f"{operation}: a token is a string of 1 to 255 characters"
    )
    assert result.error_code is None, f"{operation}: a token with an error code"
    if details.card is not None:
        number = _digits(details.card.number)
        assert number not in _digits(token), f"{operation}: the token carries the card number"
        assert number[:6] + number[-4:] not in token, f"{operation}: the token carries the PAN"
        assert f"{number}{details.card.cvv}" not in token
