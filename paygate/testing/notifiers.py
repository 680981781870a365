"""``NotifierContract``: the checks every notifier plugin must pass, for authors to re-run."""

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


class NotifierContract:
    """What every notifier must do. Subclass it as ``class TestMyNotifier(NotifierContract)``.

    The checks deliver to a real HTTP server on 127.0.0.1 (:class:`Receiver`). A notifier that
    does not speak HTTP to ``delivery.url`` can opt out of a check by setting it to ``None`` in
    its subclass, and should say why.
    """

    secret = "whsec_" + "dGVzdC1zZWNyZXQtb2YtdHdlbnR5LWZvdXI="  # a Standard Webhooks secret

    def make_notifier(self) -> Notifier:
        raise NotImplementedError(f"{type(self).__name__} must implement make_notifier()")

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

    @pytest.fixture
    def paygate_receiver(self) -> Iterator[Receiver]:
        with Receiver() as receiver:
            yield receiver

    def deliver(self, delivery: Delivery) -> DeliveryResult:
        result = self.make_notifier().deliver(delivery)
        assert isinstance(result, DeliveryResult), f"deliver must return DeliveryResult: {result}"
        return result

    def test_declares_a_name(self) -> None:
        notifier = self.make_notifier()
        assert isinstance(notifier, Notifier), "missing part of paygate.Notifier"
        assert isinstance(notifier.name, str) and notifier.name

    def test_delivers_the_exact_bytes_once_and_reports_success(
        self, paygate_receiver: Receiver
    ) -> None:
        delivery = self.make_delivery(paygate_receiver.url("/hooks"))
        result = self.deliver(delivery)
        assert result.ok and result.status_code == 200, result
        assert [(r.method, r.path, r.body) for r in paygate_receiver.requests] == [
            ("POST", "/hooks", delivery.body)
        ]

    def test_a_delivery_during_a_secret_rotation_is_sent_unchanged(
        self, paygate_receiver: Receiver
    ) -> None:
        """``previous_secrets`` is set while a rotated secret's overlap lasts: the delivery
        still goes out once, with the same bytes (signing with each secret is the notifier's
        scheme's business; see docs/plugins.md)."""
        previous = ("whsec_" + "cHJldmlvdXMtc2VjcmV0LW9mLXR3ZW50eS1mb3Vy",)
        delivery = self.make_delivery(paygate_receiver.url("/hooks"), previous_secrets=previous)
        assert previous[0] not in repr(delivery) and self.secret not in repr(delivery)
        result = self.deliver(delivery)
        assert result.ok, result
        assert [r.body for r in paygate_receiver.requests] == [delivery.body]

    def test_a_non_2xx_answer_is_a_failed_attempt(self, paygate_receiver: Receiver) -> None:
        paygate_receiver.status = 500
        result = self.deliver(self.make_delivery(paygate_receiver.url("/hooks")))
        assert not result.ok and result.status_code == 500, result

    def test_a_refused_connection_is_reported_not_raised(self) -> None:
        result = self.deliver(self.make_delivery(f"http://127.0.0.1:{Receiver.closed_port()}/"))
        assert not result.ok and result.status_code is None, result
        assert isinstance(result.error, str) and result.error

    def test_a_slow_receiver_is_cut_off_at_the_delivery_timeout(
        self, paygate_receiver: Receiver
    ) -> None:
        paygate_receiver.delay = 10.0  # released when the test ends
        started = time.monotonic()
        result = self.deliver(self.make_delivery(paygate_receiver.url("/slow"), timeout=0.5))
        assert not result.ok, result
        assert time.monotonic() - started < 5.0, "delivery.timeout was not honoured"

    def test_a_redirect_is_not_followed(self, paygate_receiver: Receiver) -> None:
        paygate_receiver.status = 307
        result = self.deliver(self.make_delivery(paygate_receiver.url("/hooks")))
        assert not result.ok, "a redirect is a failed attempt (the target was never checked)"
        assert [r.path for r in paygate_receiver.requests] == ["/hooks"]

    def test_a_private_address_is_refused_unless_allowed(self, paygate_receiver: Receiver) -> None:
        """Merchant URLs must not reach internal services (SSRF), checked at connect time."""
        delivery = self.make_delivery(paygate_receiver.url("/hooks"), allow_private=False)
        result = self.deliver(delivery)
        assert not result.ok and result.error, result
        assert paygate_receiver.requests == [], "a loopback address was reached"
