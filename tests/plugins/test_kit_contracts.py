"""The kit's contracts for observers, refund policies and webhook transports: well-behaved
plugins pass them, and each contract catches the plugin that breaks it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from paygate import DeliveryResult, RefundDenied, hookimpl
from paygate.testing import (
    ObserverContract,
    RefundCase,
    RefundPolicyContract,
    WebhookTransportContract,
)
from paygate.testing.observers import make_event

# -- observers ---------------------------------------------------------------------------------


class JsonLinesObserver:
    """Appends every event to a JSON Lines file; an unwritable file raises."""

    name = "kit-jsonl"

    def __init__(self, path: Path):
        self.path = path

    def observe(self, event) -> None:
        with open(self.path, "a", encoding="utf-8") as sink:
            sink.write(json.dumps({"id": event.id, "type": event.type}) + "\n")


class JsonLinesContract(ObserverContract):
    @pytest.fixture(autouse=True)
    def _sink(self, tmp_path):
        self.path = tmp_path / "events.jsonl"

    def make_observer(self):
        return JsonLinesObserver(self.path)

    def observed(self, observer):
        if not observer.path.exists():
            return []
        return [json.loads(line)["id"] for line in observer.path.read_text().splitlines()]

    @contextmanager
    def failing_sink(self, observer) -> Iterator[None]:
        path = observer.path
        observer.path = path.parent / "missing-directory" / "events.jsonl"
        try:
            yield
        finally:
            observer.path = path


@pytest.mark.usefixtures("paygate_services")
class TestAJsonLinesObserverPassesTheKit(JsonLinesContract):
    pass


class Swallowing(JsonLinesObserver):
    """Breaks the contract: a failing sink is logged and the event is gone."""

    def observe(self, event) -> None:
        try:
            super().observe(event)
        except OSError:
            pass


class RenamesItself(JsonLinesObserver):
    """Breaks the contract: a name that changes per process loses its position."""

    def __init__(self, path):
        super().__init__(path)
        self.name = f"kit-jsonl-{id(self):x}"


def test_the_observer_contract_catches_a_swallowed_failure(tmp_path):
    class Check(JsonLinesContract):
        def make_observer(self):
            return Swallowing(self.path)

    check = Check()
    check.path = tmp_path / "events.jsonl"
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        check.test_a_failing_sink_raises_rather_than_swallowing_the_event()


def test_the_observer_contract_catches_an_unstable_name(tmp_path):
    class Check(JsonLinesContract):
        def make_observer(self):
            return RenamesItself(self.path)

    check = Check()
    check.path = tmp_path / "events.jsonl"
    with pytest.raises(AssertionError, match="the same in every process"):
        check.test_declares_a_stable_name()


def test_the_observer_contract_catches_an_observer_that_drops_events(tmp_path):
    class Forgetful(JsonLinesObserver):
        def observe(self, event) -> None:
            if event.type != "refund.failed":  # one kind of event never reaches the sink
                super().observe(event)

    class Check(JsonLinesContract):
        def make_observer(self):
            return Forgetful(self.path)

    check = Check()
    check.path = tmp_path / "events.jsonl"
    with pytest.raises(AssertionError, match="every event, in order"):
        check.test_observes_every_event_of_the_catalogue()


def test_events_are_built_like_the_gateways():
    event = make_event("refund.processed")
    body = json.loads(event.body)
    assert body["event"] == event.type == "refund.processed"
    assert body["data"] == dict(event.data) and event.resource_id == body["data"]["refund"]["id"]
    assert make_event().sequence > event.sequence


# -- refund policies ---------------------------------------------------------------------------

LIMIT = 5000
REASON = "Refunds above 50 rupees need a manager"


class DenyAboveLimit:
    """Refuses refunds that would take the total refunded above ``LIMIT``."""

    @hookimpl
    def paygate_refund_policy(self, refund_request, refunded_amount):
        if refunded_amount + refund_request.amount > LIMIT:
            return RefundDenied(REASON)
        return None


class LimitContract(RefundPolicyContract):
    def make_policy(self):
        return DenyAboveLimit()

    def allowed_refund(self):
        return RefundCase(amount=10000, refund=2000, refunded_before=1000)

    def denied_refund(self):
        return RefundCase(amount=10000, refund=4500, refunded_before=1000, reason="late")


@pytest.mark.usefixtures("paygate_services")
class TestARefundLimitPassesTheKit(LimitContract):
    pass


class DenyAboveLimitAtKitbank(DenyAboveLimit):
    """The same rule, limited to one processor's payments."""

    paygate_policy_processors = frozenset({"kitbank"})


class ScopedLimitContract(LimitContract):
    plugin_name = "scoped_limit"

    def make_policy(self):
        return DenyAboveLimitAtKitbank()


@pytest.mark.usefixtures("paygate_services")
class TestAScopedPolicyPassesTheKit(ScopedLimitContract):
    """Its payments go through the processor it is limited to; the gateway checks skip (the
    kit's gateway pays through the test processor)."""


def test_the_policy_contract_asks_through_the_gateways_scoped_call_site(monkeypatch):
    from paygate.config import Settings

    contract = ScopedLimitContract()
    case = contract.denied_refund()
    policy = contract.make_policy()
    settings = Settings.from_env(TEST_MODE="true")
    assert contract.make_payment(case).processor == "kitbank"
    assert contract.ask(policy, case, settings) == RefundDenied(REASON)
    elsewhere = contract.make_payment(case, processor="test")
    assert contract.ask(policy, case, settings, elsewhere) is None, "asked out of its scope"
    # The operator's scope applies under the plugin's name: another merchant only.
    monkeypatch.setenv("PAYGATE_PLUGIN_SCOPED_LIMIT_MERCHANTS", "some-other-merchant")
    scoped = Settings.from_env(TEST_MODE="true")
    assert contract.ask(policy, case, scoped, contract.make_payment(case)) is None
    # The kit's own payments follow the scope in force: of the merchant it is limited to.
    assert contract.make_payment(case, scoped).merchant_id == "some-other-merchant"
    assert contract.ask(policy, case, scoped) == RefundDenied(REASON)


def test_the_policy_contract_follows_the_operators_processors_lifting_the_declared_ones(
    monkeypatch,
):
    """``PAYGATE_PLUGIN_<NAME>_PROCESSORS=*`` lifts the declared limit: the policy sees every
    payment, so there is no "outside" to check, and the kit pays through the test processor."""

    from paygate.config import Settings

    monkeypatch.setenv("PAYGATE_PLUGIN_SCOPED_LIMIT_PROCESSORS", "*")
    settings = Settings.from_env(TEST_MODE="true")
    contract = ScopedLimitContract()
    assert contract.scope(settings) == (None, None)
    assert contract.processor_in_scope(settings) == "test"
    contract.test_a_denial_is_refund_denied_with_a_reason(settings)
    with pytest.raises(pytest.skip.Exception, match="sees every payment"):
        contract.test_a_payment_outside_its_declared_processors_is_not_asked(settings)


def test_the_policy_contract_follows_the_operators_processors_replacing_the_declared_ones(
    monkeypatch,
):
    """``PAYGATE_PLUGIN_<NAME>_PROCESSORS=test`` replaces the declared ``kitbank``: the kit pays
    through ``test`` and the denial is checked there; a kitbank payment is now outside."""
    from paygate.config import Settings

    monkeypatch.setenv("PAYGATE_PLUGIN_SCOPED_LIMIT_PROCESSORS", "test")
    settings = Settings.from_env(TEST_MODE="true")
    contract = ScopedLimitContract()
    assert contract.scope(settings) == (None, frozenset({"test"}))
    assert contract.processor_in_scope(settings) == "test"
    contract.test_a_denial_is_refund_denied_with_a_reason(settings)
    contract.test_a_payment_outside_its_declared_processors_is_not_asked(settings)
    case = contract.denied_refund()
    kitbank = contract.make_payment(case, settings, processor="kitbank")
    assert contract.ask(contract.make_policy(), case, settings, kitbank) is None


def test_every_assertion_of_the_policy_contract_says_what_went_wrong(paygate_settings):
    """A policy that denies what it should allow fails with a message, not a bare assert."""

    class DeniesAll:
        @hookimpl
        def paygate_refund_policy(self):
            return RefundDenied("never")

    class Check(LimitContract):
        def make_policy(self):
            return DeniesAll()

    with pytest.raises(AssertionError, match=r"must be answered None, got RefundDenied"):
        Check().test_an_allowed_refund_raises_no_objection(paygate_settings)


def test_the_policy_contract_catches_a_denial_without_a_reason(paygate_settings):
    class Mute:
        @hookimpl
        def paygate_refund_policy(self, refund_request):
            return RefundDenied(" ") if refund_request.amount > LIMIT else None

    class Check(LimitContract):
        def make_policy(self):
            return Mute()

        def denied_refund(self):
            return RefundCase(amount=10000, refund=9000)

    with pytest.raises(AssertionError, match="needs a reason"):
        Check().test_a_denial_is_refund_denied_with_a_reason(paygate_settings)


def test_the_policy_contract_catches_a_stateful_policy(paygate_settings):
    class EverySecond:
        calls = 0

        @hookimpl
        def paygate_refund_policy(self):
            EverySecond.calls += 1
            return RefundDenied("busy") if EverySecond.calls % 2 == 0 else None

    class Check(LimitContract):
        def make_policy(self):
            return EverySecond()

    with pytest.raises(AssertionError):
        Check().test_the_same_question_gets_the_same_answer(paygate_settings)


def test_the_policy_contract_catches_a_slow_policy(paygate_settings):
    class Slow:
        @hookimpl
        def paygate_refund_policy(self):
            time.sleep(0.06)

    class Check(LimitContract):
        def make_policy(self):
            return Slow()

    with pytest.raises(AssertionError, match="max_seconds"):
        Check().test_is_fast(paygate_settings)


def test_the_policy_contract_catches_a_wrong_hook_signature():
    class Misspelt:
        @hookimpl
        def paygate_refund_policy(self, refund):  # not an argument of the hook
            return None

    class Check(LimitContract):
        def make_policy(self):
            return Misspelt()

    with pytest.raises(AssertionError, match="hook specification"):
        Check().test_implements_the_hook_as_specified()


# -- webhook transports ------------------------------------------------------------------------


class FileTransport:
    """A webhook transport that is not HTTP: appends each body to a file named by the URL
    (``file:///path``); a missing directory is a failed attempt."""

    name = "file"

    def deliver(self, delivery) -> DeliveryResult:
        path = Path(delivery.url.removeprefix("file://"))
        try:
            with open(path, "ab") as sink:
                sink.write(delivery.body + b"\n")
        except OSError as exc:
            return DeliveryResult(ok=False, error=f"{type(exc).__name__}: {exc.strerror}")
        return DeliveryResult(ok=True)


class FileTransportContract(WebhookTransportContract):
    speaks_http = False

    @pytest.fixture(autouse=True)
    def _sink(self, tmp_path):
        self.path = tmp_path / "deliveries"

    def make_notifier(self):
        return FileTransport()

    def target(self):
        return f"file://{self.path}"

    def received(self):
        if not self.path.exists():
            return []
        return self.path.read_bytes().splitlines()

    def unreachable_target(self):
        return f"file://{self.path.parent}/missing/deliveries"


class TestAFileTransportPassesTheKit(FileTransportContract):
    pass


def test_http_only_checks_skip_for_another_transport_and_say_why():
    check = FileTransportContract()
    for name in (
        "test_a_non_2xx_answer_is_a_failed_attempt",
        "test_a_slow_receiver_is_cut_off_at_the_delivery_timeout",
        "test_a_redirect_is_not_followed",
        "test_a_private_address_is_refused_unless_allowed",
    ):
        with pytest.raises(pytest.skip.Exception, match="HTTP-only check"):
            getattr(check, name)()


def test_the_transport_contract_catches_a_transport_that_loses_deliveries(tmp_path):
    class Liar(FileTransport):
        def deliver(self, delivery) -> DeliveryResult:
            return DeliveryResult(ok=True)  # says delivered, wrote nothing

    class Check(FileTransportContract):
        def make_notifier(self):
            return Liar()

    check = Check()
    check.path = tmp_path / "deliveries"
    with pytest.raises(AssertionError):
        check.test_delivers_the_exact_bytes_once_and_reports_success()


def test_the_transport_contract_catches_a_transport_that_raises(tmp_path):
    class Raises(FileTransport):
        def deliver(self, delivery) -> DeliveryResult:
            open(Path(delivery.url.removeprefix("file://")), "ab").close()  # noqa: SIM115
            return super().deliver(delivery)

    class Check(FileTransportContract):
        def make_notifier(self):
            return Raises()

    check = Check()
    check.path = tmp_path / "deliveries"
    with pytest.raises(OSError):
        check.test_an_unreachable_target_is_reported_not_raised()


def test_the_transport_contract_catches_a_secret_in_the_result(tmp_path):
    class Chatty(FileTransport):
        def deliver(self, delivery) -> DeliveryResult:
            return DeliveryResult(ok=False, error=f"could not sign with {delivery.secret}")

    class Check(FileTransportContract):
        def make_notifier(self):
            return Chatty()

    check = Check()
    check.path = tmp_path / "deliveries"
    with pytest.raises(AssertionError, match="secret appears"):
        check.test_an_unreachable_target_is_reported_not_raised()
