"""Fixtures for the API contract tests: the in-process app on a context whose jobs run inline."""

from __future__ import annotations

import falcon.testing
import pytest

from paygate.api.app import create_app
from paygate.plugins import load_plugins
from paygate.services import Context, payments, refunds
from tests.fixtures import make_settings


class InlineDispatcher:
    """Runs the real payment and refund jobs synchronously, right after commit, as Huey's
    immediate mode would. Webhook deliveries stay in the outbox (nothing is sent): fuzzed
    webhook URLs must never be called."""

    def __init__(self) -> None:
        self.ctx: Context | None = None
        self.payments: list[str] = []
        self.refunds: list[str] = []

    def payment(self, payment_id: str) -> bool:
        self.payments.append(payment_id)
        payments.process(self.ctx, payment_id)
        return True

    def refund(self, refund_id: str) -> bool:
        self.refunds.append(refund_id)
        refunds.process(self.ctx, refund_id)
        return True

    def webhooks(self, log_ids: list) -> bool:
        return True

    def created(self, payment_id: str, log_ids: list) -> bool:
        return self.payment(payment_id) and self.webhooks(log_ids)

    def ping(self) -> bool:
        return True

    def worker_running(self) -> bool:
        return False


@pytest.fixture
def inline_ctx(shared_db, clean) -> Context:
    """A services context on the test database whose jobs run inline (no worker needed)."""
    settings = make_settings()
    dispatcher = InlineDispatcher()
    ctx = Context(
        settings=settings, db=shared_db, plugins=load_plugins(settings), dispatcher=dispatcher
    )
    dispatcher.ctx = ctx
    return ctx


@pytest.fixture
def inline_app(inline_ctx) -> falcon.App:
    return create_app(inline_ctx)


@pytest.fixture
def inline_api(inline_app) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(inline_app, headers={"Content-Type": "application/json"})
