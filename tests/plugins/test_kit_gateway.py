"""The plugin kit's in-process gateway (``paygate_database``, ``paygate_gateway``): the real API
app, services and database, the worker's jobs run by ``run_jobs``, no Redis."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from paygate import Event, hookimpl
from paygate.testing import Gateway, ObserverContract, Receiver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def paygate_database(paygate_services, paygate_database):
    """The kit's own fixture, on this run's servers (``paygate_services`` sets DATABASE_URL)."""
    return paygate_database


class Recorder:
    """An observer that keeps what it was given, failing while ``broken``."""

    def __init__(self, name: str = "kit-recorder"):
        self.name = name
        self.seen: list[Event] = []
        self.broken = False

    def observe(self, event: Event) -> None:
        if self.broken:
            raise OSError("sink down")
        self.seen.append(event)


def test_a_payment_settles_and_a_refund_is_processed_through_run_jobs(paygate_gateway: Gateway):
    gateway = paygate_gateway
    created = gateway.create_payment(25000)
    assert created["status"] == "pending" and created["amount"] == 25000
    assert gateway.dispatcher.dispatched["payments"] == 1, "handed to the worker after commit"
    assert gateway.payment(created["id"])["status"] == "pending", "nothing runs until run_jobs"
    ran = gateway.run_jobs()
    assert ran["payments"] == 1
    assert gateway.payment(created["id"])["status"] == "success"
    assert gateway.run_jobs()["payments"] == 0, "a settled payment is no longer due"
    answer = gateway.refund(created["id"], 5000, reason="damaged")
    assert answer.status_code == 201, answer.text
    assert answer.json["status"] == "pending"
    assert gateway.run_jobs()["refunds"] == 1
    assert gateway.get_refund(answer.json["id"])["status"] == "processed"
    assert [r["amount"] for r in gateway.refunds(created["id"])] == [5000]
    assert gateway.payment(created["id"])["amount_refunded"] == 5000


def test_a_declined_payment_and_the_api_error_envelope(paygate_gateway: Gateway):
    gateway = paygate_gateway
    failed = gateway.paid_payment(3000, {"method": "upi", "vpa": "failure@test"})
    assert failed["status"] == "failed" and failed["error_code"]
    refused = gateway.refund(failed["id"], 100)
    assert refused.status_code == 400 and refused.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_events_of_every_merchant_are_read_back_in_order(paygate_gateway: Gateway):
    gateway = paygate_gateway
    other = gateway.create_merchant(name="Second")
    first = gateway.paid_payment(1000)
    second = gateway.paid_payment(2000, merchant=other)
    events = gateway.events()
    assert [(e.type, e.resource_id) for e in events] == [
        ("payment.created", first["id"]),
        ("payment.pending", first["id"]),
        ("payment.success", first["id"]),
        ("payment.created", second["id"]),
        ("payment.pending", second["id"]),
        ("payment.success", second["id"]),
    ]
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)
    assert {e.merchant_id for e in gateway.events(merchant=other)} == {other.id}
    success = [e for e in events if e.type == "payment.success"][0]
    assert success.data["payment"]["id"] == first["id"] and b'"payment.success"' in success.body


def test_events_wait_for_older_transactions_on_the_server_with_a_bound(
    paygate_gateway: Gateway, paygate_database: str
):
    """The event log's reader returns an event only once every older transaction has ended:
    ``events()`` waits for that, and says so after its timeout instead of answering short."""
    import threading
    import time

    import psycopg

    from paygate.testing.gateway import GatewayError

    gateway = paygate_gateway
    with psycopg.connect(paygate_database) as older:
        older.execute("SELECT pg_current_xact_id()")  # a transaction older than the payment's
        paid = gateway.paid_payment(1700)
        with pytest.raises(GatewayError, match="still open"):
            gateway.events(timeout=0.3)
        ends = threading.Timer(0.5, older.commit)
        started = time.monotonic()
        ends.start()
        events = gateway.events()
        ends.join()
    assert time.monotonic() - started >= 0.4, "answered before the older transaction ended"
    assert [e.resource_id for e in events] == [paid["id"]] * 3


def test_webhooks_are_delivered_by_run_jobs(paygate_gateway: Gateway):
    gateway = paygate_gateway
    with Receiver() as receiver:
        config = gateway.request(
            "POST", "/api/v1/webhooks/config", {"webhook_url": receiver.url("/hooks")}
        )
        assert config.status_code == 200, config.text
        payment = gateway.paid_payment(1500)
        gateway.run_jobs()
        bodies = [r.body for r in receiver.wait_for("/hooks", 3)]
    assert any(payment["id"].encode() in body and b"payment.success" in body for body in bodies)


def test_registered_observers_are_fed_in_order_and_retried_after_a_failure(
    paygate_gateway: Gateway,
):
    gateway = paygate_gateway
    recorder = Recorder()

    class Plugin:
        @hookimpl
        def paygate_register_observers(self, register):
            register(recorder)

    with gateway.registered(Plugin()):
        recorder.broken = True
        payment = gateway.paid_payment(4200)
        assert recorder.seen == [] and gateway.observer_failures[recorder.name] >= 1
        recorder.broken = False
        assert gateway.run_jobs()["observers"] == len(gateway.events())
    assert [e.id for e in recorder.seen] == [e.id for e in gateway.events()]
    assert {e.resource_id for e in recorder.seen} == {payment["id"]}
    assert "kit-recorder" not in gateway.ctx.plugins.observers, "unregistered after the block"


def test_feeding_keeps_the_gateways_bookkeeping_of_the_observer(paygate_gateway: Gateway):
    """``feed`` is the worker's way: the position and the failure are in observer_positions
    (what ``paygate observers`` shows), not in the kit."""
    from paygate.services import observers

    gateway = paygate_gateway
    recorder = Recorder("kit-bookkept")
    recorder.broken = True
    payment = gateway.paid_payment(2100)
    assert gateway.feed(recorder) == 0
    (state,) = [s.state for s in observers.status(gateway.ctx) if s.name == "kit-bookkept"]
    first = gateway.events()[0]
    assert state is not None and state.attempts == 1 and state.failing_event_id == first.id
    assert state.last_error == "OSError: sink down" and state.leased_by is None, "released"
    recorder.broken = False
    assert gateway.feed(recorder) == len(gateway.events()) == 3
    (state,) = [s.state for s in observers.status(gateway.ctx) if s.name == "kit-bookkept"]
    assert state is not None and state.attempts == 0 and state.last_error is None
    assert state.position == gateway.events()[-1].sequence and state.lag_events == 0
    assert {e.resource_id for e in recorder.seen} == {payment["id"]}


def test_an_observer_is_fed_only_the_events_of_the_gateway_feeding_it(
    paygate_gateway: Gateway, paygate_database: str
):
    """Positions live in the session's database: a later gateway does not hand an observer
    what an earlier one recorded and never fed it."""
    first = paygate_gateway
    recorder = Recorder("kit-isolated")
    first.paid_payment(1100)
    assert first.feed(recorder) == 3
    first.paid_payment(1200)  # recorded, never fed
    second = Gateway.start(paygate_database)
    try:
        mine = second.paid_payment(1300)
        again = Recorder("kit-isolated")
        assert second.feed(again) == 3
        assert {e.resource_id for e in again.seen} == {mine["id"]}
        assert [e.id for e in second.events()] == [e.id for e in again.seen]
    finally:
        second.close()


def test_register_plugin_checks_the_declared_plugin_api_like_the_loader(
    paygate_gateway: Gateway,
):
    from paygate import PluginError

    class Future:
        paygate_api = ">=3"

        @hookimpl
        def paygate_register_observers(self, register):
            register(Recorder("kit-future"))

    with pytest.raises(PluginError) as raised:
        with paygate_gateway.registered(Future(), name="future"):
            pass
    message = str(raised.value)
    assert "plugin 'future' requires plugin API >=3" in message
    assert "(not from an installed distribution)" in message
    assert message.endswith("PAYGATE_DISABLE_PLUGINS=future")
    assert "kit-future" not in paygate_gateway.ctx.plugins.observers, "nothing registered"

    class Today(Future):
        paygate_api = ">=1.0,<2"

    with paygate_gateway.registered(Today(), name="today"):
        assert "kit-future" in paygate_gateway.ctx.plugins.observers


class RecorderContract(ObserverContract):
    """The observer contract for a Recorder whose sink the kit can break."""

    observer_class = Recorder

    def make_observer(self):
        return self.observer_class("kit-contracted")

    def observed(self, observer):
        return [event.id for event in observer.seen]

    @contextmanager
    def failing_sink(self, observer):
        observer.broken = True
        try:
            yield
        finally:
            observer.broken = False


def test_the_observer_contracts_gateway_run_registers_the_observer_and_recovers(
    paygate_gateway: Gateway,
):
    contract = RecorderContract()
    contract.test_every_event_of_a_gateway_run_arrives_in_order(paygate_gateway)
    assert paygate_gateway.observer_failures["kit-contracted"] >= 1, "its sink failed first"
    assert "kit-contracted" not in paygate_gateway.ctx.plugins.observers, "unregistered after"


def test_the_observer_contracts_gateway_run_catches_a_dropped_event(paygate_gateway: Gateway):
    class Forgetful(Recorder):
        def observe(self, event: Event) -> None:
            if event.type != "refund.processed":
                super().observe(event)

    class Check(RecorderContract):
        observer_class = Forgetful

    with pytest.raises(AssertionError, match="every event of the gateway run, in order"):
        Check().test_every_event_of_a_gateway_run_arrives_in_order(paygate_gateway)


def test_a_plugin_under_test_routes_payments_to_its_processor(paygate_gateway: Gateway):
    """A processor registered for the test takes the merchant's payments."""
    from paygate import ChargeResult, RefundResult

    class Instant:
        name = "kit-instant"
        methods = frozenset({"upi"})
        supports_partial_refund = True
        supports_manual_capture = False
        charged: list[str] = []

        def charge(self, request):
            self.charged.append(request.payment.id)
            return ChargeResult.success(reference="inst_" + request.payment.id)

        def capture(self, payment, amount):
            return ChargeResult.success()

        def refund(self, payment, refund):
            return RefundResult.processed()

        def sync(self, payment):
            return ChargeResult.success()

        @hookimpl
        def paygate_register_processors(self, register):
            register(self)

    gateway = paygate_gateway
    with gateway.registered(Instant()):
        gateway.use_processor("kit-instant")
        paid = gateway.paid_payment(900)
    assert paid["status"] == "success" and Instant.charged == [paid["id"]]


def test_settle_gives_up_on_a_payment_that_stays_pending(paygate_gateway: Gateway):
    from paygate import ChargeResult, RefundResult
    from paygate.testing.gateway import GatewayError

    class Undecided:
        name = "kit-undecided"
        methods = frozenset({"upi"})
        supports_partial_refund = True
        supports_manual_capture = False

        def charge(self, request):
            return ChargeResult.pending(retry_after=0.05)

        def sync(self, payment):
            return ChargeResult.pending(retry_after=0.05)

        def capture(self, payment, amount):
            return ChargeResult.success()

        def refund(self, payment, refund):
            return RefundResult.processed()

        @hookimpl
        def paygate_register_processors(self, register):
            register(self)

    gateway = paygate_gateway
    with gateway.registered(Undecided()):
        gateway.use_processor("kit-undecided")
        payment = gateway.create_payment(700)
        with pytest.raises(GatewayError, match="still pending"):
            gateway.settle(payment["id"], timeout=0.5)
    assert gateway.payment(payment["id"])["status"] == "pending"


def test_register_plugin_runs_the_plugins_own_startup_check(paygate_gateway: Gateway):
    from paygate import PluginError

    started: list[str] = []

    class Checked:
        def __init__(self, limit: str) -> None:
            self.limit = limit

        @hookimpl
        def paygate_startup(self, context):
            if not self.limit.isdigit():
                raise PluginError(f"limit must be a number of paise, got {self.limit!r}")
            started.append(context.plugin)

    with pytest.raises(PluginError) as raised:
        with paygate_gateway.registered(Checked("abc"), name="checked"):
            pass
    message = str(raised.value)
    assert "plugin 'checked' failed in paygate_startup: limit must be a number" in message
    assert message.endswith("PAYGATE_DISABLE_PLUGINS=checked")
    assert paygate_gateway.ctx.plugins.pm.get_plugin("checked") is None, "nothing registered"
    with paygate_gateway.registered(Checked("5000"), name="checked"):
        assert started == ["checked"]
