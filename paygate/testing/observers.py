"""``ObserverContract``: the checks every event observer (``paygate_register_observers``) must
pass, for authors to re-run.

An observer receives every event of every merchant, at least once and in order: returning
from ``observe`` means the event is done, raising means "give me this event again later" (the
events after it wait). So an observer must accept every event the gateway records, tolerate a
repeat, and raise when its sink fails rather than swallow the event.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from .. import hookimpl
from ..events import NAMES, PAYMENT_SUCCESS, envelope
from ..plugins import Plugins
from ..types import Event, Observer
from ..wire import compact_json
from .processors import new_id

if TYPE_CHECKING:
    from .gateway import Gateway

_sequence = itertools.count(1)


def make_event(event_type: str = PAYMENT_SUCCESS, **changes: Any) -> Event:
    """An :class:`paygate.Event` built the way the gateway builds them: ``body`` is the exact
    webhook envelope (compact JSON), ``data`` its ``data`` object (``{"payment": {...}}`` or
    ``{"refund": {...}}``), ``sequence`` increasing. ``changes`` replace fields (``merchant_id=...``)."""
    entity = event_type.split(".", 1)[0]  # "payment", "refund" or "webhook"
    resource = new_id("rfnd_" if entity == "refund" else "pay_")
    view: dict[str, Any] = {
        "id": resource,
        "amount": 50000,
        "currency": "INR",
        "status": event_type.split(".", 1)[1],
        "created_at": datetime.now(UTC).isoformat(),
        "note": "₹ ünïcode",
    }
    data: dict[str, Any] = {entity: view}
    body = compact_json(envelope(event_type, data))
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "merchant_id": str(uuid.uuid4()),
        "resource_id": resource,
        "created_at": datetime.now(UTC),
        "data": data,
        "body": body,
        "sequence": next(_sequence),
        **changes,
    }
    return Event(**fields)


class ObserverContract:
    """What every observer must do. Subclass it as ``class TestMyObserver(ObserverContract)``
    and implement ``make_observer()``.

    Optional, and each makes more checks possible: ``observed(observer)`` answers the ids of
    the events the observer's sink holds, in the order they arrived (repeats allowed);
    ``failing_sink(observer)`` answers a context manager inside which the sink fails (a full
    disk, a closed socket, a server answering 500), so the kit can check that ``observe``
    raises then, and that nothing is lost once it works again.
    """

    def make_observer(self) -> Observer:
        raise NotImplementedError(f"{type(self).__name__} must implement make_observer()")

    def observed(self, observer: Observer) -> list[str] | None:
        """Ids of the events the sink of ``observer`` holds, in arrival order; None when the
        test cannot tell (the checks then only see that ``observe`` returned)."""
        return None

    def failing_sink(self, observer: Observer) -> AbstractContextManager[Any] | None:
        """A context manager inside which the sink of ``observer`` fails; None when the test
        cannot break it (the checks that need it skip)."""
        return None

    make_event = staticmethod(make_event)

    # -- helpers ----------------------------------------------------------------------------

    def observe(self, observer: Observer, event: Event) -> None:
        answer: Any = getattr(observer, "observe")(event)  # noqa: B009 - typed to return None
        assert answer is None, f"observe must return None (done) or raise, got {answer!r}"

    def _seen(self, observer: Observer) -> list[str] | None:
        ids = self.observed(observer)
        return None if ids is None else [str(i) for i in ids]

    # -- the checks -------------------------------------------------------------------------

    def test_declares_a_stable_name(self) -> None:
        observer = self.make_observer()
        assert isinstance(observer, Observer), "missing part of paygate.Observer (name, observe)"
        assert isinstance(observer.name, str) and observer.name.strip() == observer.name != ""
        assert self.make_observer().name == observer.name, (
            "the name must be the same in every process: the gateway keeps the observer's "
            "position in the event log under it"
        )

    def test_the_name_is_not_taken_by_another_installed_observer(
        self, paygate_plugins: Plugins
    ) -> None:
        observer = self.make_observer()
        installed = paygate_plugins.observers.get(observer.name)
        if installed is not None:
            owner = paygate_plugins.owner_of("observer", observer.name)
            assert type(installed) is type(observer), (
                f"observer name {observer.name!r} is taken by plugin {owner!r}: every observer "
                "needs a unique name"
            )

    def test_observes_an_event_built_like_the_gateway_builds_them(self) -> None:
        observer = self.make_observer()
        event = self.make_event()
        self.observe(observer, event)
        seen = self._seen(observer)
        if seen is not None:
            assert event.id in seen, f"event {event.id} did not reach the sink: {seen}"

    def test_observes_every_event_of_the_catalogue(self) -> None:
        observer = self.make_observer()
        events = [self.make_event(name) for name in NAMES]
        for event in events:
            self.observe(observer, event)
        seen = self._seen(observer)
        if seen is not None:
            assert [i for i in dict.fromkeys(seen) if i in {e.id for e in events}] == [
                e.id for e in events
            ], "every event, in order"

    def test_tolerates_the_same_event_twice(self) -> None:
        """Delivery is at least once: after a crash the same event (same ``id``) comes again."""
        observer = self.make_observer()
        event = self.make_event()
        self.observe(observer, event)
        self.observe(observer, event)
        self.observe(self.make_observer(), event)  # another process, after a restart
        seen = self._seen(observer)
        if seen is not None:
            assert event.id in seen

    def test_a_failing_sink_raises_rather_than_swallowing_the_event(self) -> None:
        observer = self.make_observer()
        broken = self.failing_sink(observer)
        if broken is None:
            pytest.skip("failing_sink() is not implemented: the kit cannot break the sink")
        event = self.make_event()
        with broken, pytest.raises(Exception):  # noqa: B017 - any failure will do
            observer.observe(event)
        self.observe(observer, event)  # the sink works again: the same event goes through
        seen = self._seen(observer)
        if seen is not None:
            assert event.id in seen, "the event was lost after the sink recovered"

    def test_every_event_of_a_gateway_run_arrives_in_order(self, paygate_gateway: Gateway) -> None:
        """Two merchants' payments (one settled, one declined) and a refund through a real
        gateway, with the observer registered as a plugin and fed the way the worker feeds it
        (position and failures in the gateway's bookkeeping, after each job run); its sink
        fails first when ``failing_sink`` is implemented. It ends up with every event, in
        order. An observer of that name already installed here keeps its place: this instance
        is then fed under a name of its own."""
        observer = self.make_observer()
        gateway = paygate_gateway
        installed = observer.name in gateway.ctx.plugins.observers
        key = f"contract:{observer.name}" if installed else observer.name
        registration: AbstractContextManager[Any] = (
            nullcontext() if installed else gateway.registered(_Registers(observer))
        )
        with registration:
            assert installed or gateway.ctx.plugins.observers[observer.name] is observer
            other = gateway.create_merchant(name="Kit Other Merchant")
            broken = self.failing_sink(observer)
            with broken or nullcontext():
                paid = gateway.paid_payment(12300)
                declined = {"method": "upi", "vpa": "failure@test"}
                gateway.paid_payment(4500, declined, merchant=other)
                assert gateway.refund(paid["id"], 2300).status_code == 201
                gateway.run_jobs()
                if broken is not None:
                    assert gateway.feed(observer, key=key) == 0, (
                        "observe returned while its sink failed"
                    )
                    assert gateway.observer_failures.get(key, 0) >= 1
            gateway.run_jobs()
            fed = gateway.feed(observer, key=key) if installed else 0
            events = gateway.events()
            assert {e.merchant_id for e in events} == {gateway.merchant.id, other.id}
            if installed:
                assert fed == len(events), "every event, each once"
            assert gateway.feed(observer, key=key) == 0, "nothing new: nothing fed again"
        seen = self._seen(observer)
        if seen is not None:
            expected = [e.id for e in events]
            arrived = [i for i in dict.fromkeys(seen) if i in set(expected)]
            assert arrived == expected, "every event of the gateway run, in order"


class _Registers:
    """A plugin registering one observer (the contract's observer, fed by the gateway)."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    @hookimpl
    def paygate_register_observers(self, register: Callable[[Observer], None]) -> None:
        register(self.observer)
