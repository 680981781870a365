"""``WebhookTransportContract`` (also ``NotifierContract``): the checks every webhook transport
(a ``paygate_register_notifiers`` plugin) must pass, for authors to re-run.

A webhook transport takes one delivery (``Delivery``: the exact bytes, the merchant's target,
its secrets, the attempt's timeout) and reports what happened (``DeliveryResult``). The built-in
one POSTs over HTTP with Standard Webhooks signatures; others may publish to a queue, a bus or
a file. The checks that make sense for every transport run for every transport; those about
HTTP run for an HTTP transport and skip, saying why, for the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ..events import PAYMENT_SUCCESS, envelope
from ..types import Delivery, DeliveryResult, Notifier
from ..wire import compact_json
from .processors import new_id
from .receiver import Receiver

HTTP_ONLY = "an HTTP-only check (speaks_http = False): {what}"


class WebhookTransportContract:
    """What every webhook transport must do. Subclass it as
    ``class TestMyTransport(WebhookTransportContract)`` and implement ``make_notifier()``.

    An HTTP transport (``speaks_http = True``, the default) delivers to a real HTTP server on
    127.0.0.1 (:class:`Receiver`). A transport that does not speak HTTP sets ``speaks_http =
    False`` and implements ``target()`` (a ``delivery.url`` it reaches), ``received()`` (the
    bodies that arrived there so far, in order) and ``unreachable_target()`` (a
    ``delivery.url`` it cannot reach right now); the HTTP-only checks then skip with a reason.
    """

    secret = "whsec_" + "dGVzdC1zZWNyZXQtb2YtdHdlbnR5LWZvdXI="  # a Standard Webhooks secret
    speaks_http = True
    receiver: Receiver | None = None  # the HTTP receiver of the running test

    def make_notifier(self) -> Notifier:
        raise NotImplementedError(f"{type(self).__name__} must implement make_notifier()")

    # -- where deliveries go (a transport that does not speak HTTP overrides these) ---------

    def target(self) -> str:
        """A ``delivery.url`` the transport reaches (HTTP: the test's receiver)."""
        return self._receiver().url("/hooks")

    def received(self) -> list[bytes]:
        """The bodies that arrived at ``target()`` so far, in order."""
        return [request.body for request in self._receiver().requests]

    def unreachable_target(self) -> str:
        """A ``delivery.url`` the transport cannot reach (HTTP: a closed local port)."""
        if not self.speaks_http:
            raise NotImplementedError(
                f"{type(self).__name__} must implement unreachable_target() (speaks_http = False)"
            )
        return f"http://127.0.0.1:{Receiver.closed_port()}/"

    # -- helpers ----------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _paygate_receiver(self) -> Iterator[None]:
        """The HTTP receiver of this test (for an HTTP transport), closed after it."""
        if not self.speaks_http:
            self.receiver = None
            yield
            return
        with Receiver() as receiver:
            self.receiver = receiver
            yield

    @pytest.fixture
    def paygate_receiver(self) -> Receiver:
        """This test's HTTP receiver, for a subclass's own HTTP tests."""
        return self._receiver()

    def _receiver(self) -> Receiver:
        if self.receiver is None:
            raise NotImplementedError(
                f"{type(self).__name__} sets speaks_http = False: implement target() and received()"
            )
        return self.receiver

    def _http_only(self, what: str) -> Receiver:
        if not self.speaks_http:
            pytest.skip(HTTP_ONLY.format(what=what))
        return self._receiver()

    def make_delivery(self, url: str, **changes: Any) -> Delivery:
        body = compact_json(envelope(PAYMENT_SUCCESS, {"note": "₹ ünïcode"}))
        delivery = Delivery(
            id=new_id("msg_"),
            event=PAYMENT_SUCCESS,
            url=url,
            body=body,
            secret=self.secret,
            attempt=1,
            timestamp=int(time.time()),
            timeout=2.0,
            allow_private=True,  # the receiver listens on 127.0.0.1
        )
        return replace(delivery, **changes)

    def deliver(self, delivery: Delivery) -> DeliveryResult:
        result = self.make_notifier().deliver(delivery)
        assert isinstance(result, DeliveryResult), f"deliver must return DeliveryResult: {result}"
        for secret in (delivery.secret, *delivery.previous_secrets):
            shown = f"{result.error or ''} {result.body or ''} {result!r}"
            assert secret not in shown, "a webhook secret appears in the DeliveryResult"
        return result

    def wait_for_bodies(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """What ``received()`` holds once it has ``count`` bodies (or after ``timeout``): a
        transport may hand a delivery to a sink that takes a moment to show it."""
        deadline = time.monotonic() + timeout
        while True:
            bodies = self.received()
            if len(bodies) >= count or time.monotonic() > deadline:
                return bodies
            time.sleep(0.02)

    # -- every transport --------------------------------------------------------------------

    def test_declares_a_name(self) -> None:
        notifier = self.make_notifier()
        assert isinstance(notifier, Notifier), "missing part of paygate.Notifier"
        assert isinstance(notifier.name, str) and notifier.name
        assert self.make_notifier().name == notifier.name, "the name must not change"

    def test_delivers_the_exact_bytes_once_and_reports_success(self) -> None:
        delivery = self.make_delivery(self.target())
        result = self.deliver(delivery)
        assert result.ok, result
        if self.speaks_http:
            assert result.status_code == 200, result
            assert [(r.method, r.path) for r in self._receiver().requests] == [("POST", "/hooks")]
        assert self.wait_for_bodies(1) == [delivery.body]

    def test_a_delivery_during_a_secret_rotation_is_sent_unchanged(self) -> None:
        """``previous_secrets`` is set while a rotated secret's overlap lasts: the delivery
        still goes out once, with the same bytes (signing with each secret is the transport's
        scheme's business; see docs/plugins.md)."""
        previous = ("whsec_" + "cHJldmlvdXMtc2VjcmV0LW9mLXR3ZW50eS1mb3Vy",)
        delivery = self.make_delivery(self.target(), previous_secrets=previous)
        assert previous[0] not in repr(delivery) and self.secret not in repr(delivery)
        result = self.deliver(delivery)
        assert result.ok, result
        assert self.wait_for_bodies(1) == [delivery.body]

    def test_each_attempt_is_delivered_again(self) -> None:
        """A retry (the same ``id`` and body, the next ``attempt``) goes out again: the
        gateway retries only what failed, and the receiver deduplicates by ``id``."""
        first = self.make_delivery(self.target())
        assert self.deliver(first).ok
        assert self.deliver(replace(first, attempt=2, timestamp=first.timestamp + 1)).ok
        assert self.wait_for_bodies(2) == [first.body, first.body]

    def test_an_unreachable_target_is_reported_not_raised(self) -> None:
        result = self.deliver(self.make_delivery(self.unreachable_target()))
        assert not result.ok, result
        assert isinstance(result.error, str) and result.error, "say why it failed in error"
        if self.speaks_http:
            assert result.status_code is None, result

    # -- HTTP transports --------------------------------------------------------------------

    def test_a_non_2xx_answer_is_a_failed_attempt(self) -> None:
        receiver = self._http_only("an HTTP status code is what fails an HTTP delivery")
        receiver.status = 500
        result = self.deliver(self.make_delivery(self.target()))
        assert not result.ok and result.status_code == 500, result

    def test_a_slow_receiver_is_cut_off_at_the_delivery_timeout(self) -> None:
        receiver = self._http_only("the kit can make only its HTTP receiver slow")
        receiver.delay = 10.0  # released when the test ends
        started = time.monotonic()
        result = self.deliver(self.make_delivery(receiver.url("/slow"), timeout=0.5))
        assert not result.ok, result
        assert time.monotonic() - started < 5.0, "delivery.timeout was not honoured"

    def test_a_redirect_is_not_followed(self) -> None:
        receiver = self._http_only("redirects exist only in HTTP")
        receiver.status = 307
        result = self.deliver(self.make_delivery(self.target()))
        assert not result.ok, "a redirect is a failed attempt (the target was never checked)"
        assert [r.path for r in receiver.requests] == ["/hooks"]

    def test_a_private_address_is_refused_unless_allowed(self) -> None:
        """Merchant URLs must not reach internal services (SSRF), checked at connect time."""
        receiver = self._http_only("private addresses are about URLs a merchant gives")
        delivery = self.make_delivery(self.target(), allow_private=False)
        result = self.deliver(delivery)
        assert not result.ok and result.error, result
        assert receiver.requests == [], "a loopback address was reached"


# The name the notifier hook gave it; a notifier is the webhook transport.
NotifierContract = WebhookTransportContract
