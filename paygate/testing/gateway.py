"""An in-process gateway for plugin tests: the real API app, services and database, no Redis.

:func:`scratch_database` gives a fresh, migrated database for a test session (on the
PostgreSQL of ``DATABASE_URL`` when set, else on an embedded server like ``paygate up``'s).
:class:`Gateway` wires a services context on it through ``paygate.wiring.build_context``, with
the installed plugins plus any registered for a test, and drives it: merchants, orders, payments
and refunds through the API app in process (``falcon.testing``), the worker's jobs run
synchronously by :meth:`Gateway.run_jobs`, and what happened read back (payments, refunds, the
event log).

What the worker would be handed after commit is not queued anywhere: the kit's dispatcher
only counts it, and :meth:`Gateway.run_jobs` asks the database for every due row (as the
janitor does) and runs each job's service in this process. So no Redis is needed, and a job
that a test runs twice behaves as in production: a no-op once its row is no longer due.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import falcon.testing
import orjson

from ..config import Settings
from ..embedded import Scratch, scratch
from ..plugins import Plugins
from ..services import Context, merchants, payments, recovery, refunds, views, webhooks
from ..types import Event, Observer
from ..wiring import build_context, prepare_database
from .registration import register_plugin

# What the kit's gateway runs with over the environment (``Gateway.start(env=...)`` overrides
# them): test mode, no simulated processing delay, webhooks allowed to the loopback receivers,
# and a short job lease, so a job waits inline for a pending answer at most 1 s (half the
# lease) before deferring, as the worker does.
KIT_ENV = {
    "TEST_MODE": "true",
    "TEST_PROCESSING_DELAY": "0",
    "PAYGATE_JOB_LEASE_SECONDS": "2",
    "WEBHOOK_RETRY_INTERVALS_TEST": "true",
    "PAYGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
}
# A UPI address the built-in test processor always settles as ``success``.
SUCCEEDING_UPI = {"method": "upi", "vpa": "success@test"}
# ``scratch`` starts an embedded Redis for a missing URL; the kit never connects to Redis, so
# any well-formed URL will do (the one the environment names, else the default).
_UNUSED_REDIS_URL = "redis://127.0.0.1:6379/0"
JOB_KINDS = ("payments", "refunds", "payment_operations", "webhook_logs", "observers")


def scratch_database(prefix: str = "paygate_kit") -> Scratch:
    """A new, migrated database for one test session: ``<prefix>_<random>`` on the server of
    ``DATABASE_URL`` when it is set, else on an embedded PostgreSQL started in a temporary
    directory. Call ``stop()`` on the answer to drop it (and stop the embedded server)."""
    environment = Settings.from_env()
    created = scratch(prefix, environment.database_url, environment.redis_url or _UNUSED_REDIS_URL)
    try:
        prepare_database(Settings.from_env(None, **KIT_ENV, DATABASE_URL=created.database_url))
    except BaseException:
        created.stop()
        raise
    return created


class InProcessDispatcher:
    """The dispatcher of the kit's gateway: it hands nothing over (``Gateway.run_jobs`` finds
    due work in the database) and counts what it was given, for tests that want to know."""

    def __init__(self) -> None:
        self.dispatched: dict[str, int] = dict.fromkeys(JOB_KINDS, 0)

    def _count(self, kind: str, n: int = 1) -> bool:
        self.dispatched[kind] += n
        return True

    def payment(self, payment_id: str) -> bool:
        return self._count("payments")

    def refund(self, refund_id: str) -> bool:
        return self._count("refunds")

    def payment_operation(self, payment_id: str) -> bool:
        return self._count("payment_operations")

    def webhooks(self, log_ids: list) -> bool:
        return self._count("webhook_logs", len(log_ids))

    def ping(self) -> bool:
        return True

    def worker_running(self) -> bool:
        return True  # Gateway.run_jobs is the worker


@dataclass(frozen=True)
class KitMerchant:
    """A merchant made for a test, with the API credentials the API client sends."""

    id: str
    email: str
    api_key: str
    api_secret: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key, "X-Api-Secret": self.api_secret}


class GatewayError(AssertionError):
    """An API call of a :class:`Gateway` helper did not answer what the helper needs."""


class Gateway:
    """A gateway in this process on a real database. Build it with :meth:`start` (the
    ``paygate_gateway`` fixture does) and ``close()`` it.

    ``ctx`` is the services context (``ctx.plugins`` holds every installed plugin and those
    registered with :meth:`registered`); ``client`` the API app under ``falcon.testing``;
    ``merchant`` a merchant made for this gateway, routed to ``processor`` (the built-in test
    processor unless the fixture says otherwise).
    """

    def __init__(self, ctx: Context, dispatcher: InProcessDispatcher):
        from ..api.app import create_app

        self.ctx = ctx
        self.dispatcher = dispatcher
        self.client = falcon.testing.TestClient(
            create_app(ctx), headers={"Content-Type": "application/json"}
        )
        self.observer_positions: dict[str, int] = {}
        self.observer_failures: dict[str, int] = {}
        with ctx.db.connection() as conn:
            row: Any = conn.execute("SELECT coalesce(max(seq), 0) AS seq FROM events").fetchone()
        self._first_sequence = int(row["seq"])
        self.merchant = self.create_merchant()

    @classmethod
    def start(
        cls,
        database_url: str,
        *,
        env: Mapping[str, str] | None = None,
        plugins: Plugins | None = None,
    ) -> Gateway:
        """A gateway on ``database_url`` (migrated), with settings from the environment, the
        kit's defaults (``KIT_ENV``) and ``env`` on top; ``plugins`` default to what the
        gateway would load here (the built-ins and every installed plugin)."""
        settings = Settings.from_env(
            None, **{**KIT_ENV, **(env or {}), "DATABASE_URL": database_url}
        )
        ctx = build_context(settings, role="kit", plugins=plugins)
        dispatcher = InProcessDispatcher()
        ctx.dispatcher = dispatcher
        merchants.forget_cached()
        try:
            return cls(ctx, dispatcher)
        except BaseException:
            ctx.db.close()
            raise

    def close(self) -> None:
        merchants.forget_cached()
        self.ctx.db.close()

    # -- plugins ----------------------------------------------------------------------------

    @contextmanager
    def registered(self, plugin: object, name: str | None = None) -> Iterator[str]:
        """``plugin`` (a module or an object with ``@hookimpl``s) registered on this gateway
        for a ``with`` block (see ``paygate.testing.register_plugin``); a plugin already
        loaded here (its distribution is installed) stays as it is. Yields its name."""
        pm = self.ctx.plugins.pm
        if pm.is_registered(plugin):
            yield pm.get_name(plugin) or ""
            return
        with register_plugin(self.ctx.plugins, plugin, name) as registered_name:
            yield registered_name

    # -- the API, in process ----------------------------------------------------------------

    def create_merchant(
        self, *, name: str = "Kit Merchant", processor: str | None = None
    ) -> KitMerchant:
        """A new active merchant (routed to ``processor``, else the test processor)."""
        email = f"kit-{secrets.token_hex(6)}@example.com"
        merchant, issued = merchants.create(self.ctx, name, email, processor)
        return KitMerchant(merchant.id, email, issued.key.api_key, issued.api_secret)

    def use_processor(self, processor: str, merchant: KitMerchant | None = None) -> None:
        """Route the merchant's new payments to ``processor`` (``merchants set-processor``)."""
        merchants.set_processor(self.ctx, (merchant or self.merchant).id, processor)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        merchant: KitMerchant | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> falcon.testing.Result:
        """``method path`` on the API app as ``merchant`` (the gateway's own by default)."""
        return self.client.simulate_request(
            method,
            path,
            json=body,
            headers={**(merchant or self.merchant).headers, **(headers or {})},
        )

    def _expect(self, result: falcon.testing.Result, status: int, what: str) -> dict[str, Any]:
        if result.status_code != status:
            raise GatewayError(f"{what} answered {result.status_code}: {result.text}")
        return result.json

    def create_order(
        self, amount: int = 10000, *, merchant: KitMerchant | None = None, **fields: Any
    ) -> dict[str, Any]:
        """``POST /api/v1/orders`` (``currency``, ``receipt``, ``notes`` in ``fields``)."""
        answer = self.request(
            "POST", "/api/v1/orders", {"amount": amount, **fields}, merchant=merchant
        )
        return self._expect(answer, 201, "POST /api/v1/orders")

    def create_payment(
        self,
        amount: int = 10000,
        method: Mapping[str, Any] | None = None,
        *,
        order_id: str | None = None,
        merchant: KitMerchant | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v1/payments`` for ``order_id`` or a new order of ``amount``; ``method``
        is the method part of the body (``{"method": "upi", "vpa": ...}`` or a card), by
        default a UPI address the test processor settles as ``success``. The payment as the
        API answered it (201), still ``pending`` until :meth:`run_jobs`."""
        if order_id is None:
            order_id = self.create_order(amount, merchant=merchant)["id"]
        body = {"order_id": order_id, **(method or SUCCEEDING_UPI)}
        return self._expect(
            self.request("POST", "/api/v1/payments", body, merchant=merchant),
            201,
            "POST /api/v1/payments",
        )

    def paid_payment(
        self,
        amount: int = 10000,
        method: Mapping[str, Any] | None = None,
        *,
        merchant: KitMerchant | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """A payment created and settled (:meth:`create_payment` then :meth:`settle`)."""
        created = self.create_payment(amount, method, merchant=merchant)
        return self.settle(created["id"], merchant=merchant, timeout=timeout)

    def payment(self, payment_id: str, *, merchant: KitMerchant | None = None) -> dict[str, Any]:
        """``GET /api/v1/payments/{id}``."""
        path = f"/api/v1/payments/{payment_id}"
        return self._expect(self.request("GET", path, merchant=merchant), 200, f"GET {path}")

    def refund(
        self,
        payment_id: str,
        amount: int | None = None,
        *,
        reason: str | None = None,
        merchant: KitMerchant | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> falcon.testing.Result:
        """``POST /api/v1/payments/{id}/refunds`` (the whole refundable amount when ``amount``
        is None); the raw answer: 201 with the refund, or the contract's error envelope."""
        body: dict[str, Any] = {}
        if amount is not None:
            body["amount"] = amount
        if reason is not None:
            body["reason"] = reason
        path = f"/api/v1/payments/{payment_id}/refunds"
        return self.request("POST", path, body, merchant=merchant, headers=headers)

    def get_refund(self, refund_id: str, *, merchant: KitMerchant | None = None) -> dict[str, Any]:
        """``GET /api/v1/refunds/{id}``."""
        path = f"/api/v1/refunds/{refund_id}"
        return self._expect(self.request("GET", path, merchant=merchant), 200, f"GET {path}")

    def refunds(
        self, payment_id: str, *, merchant: KitMerchant | None = None
    ) -> list[dict[str, Any]]:
        """Every refund of the payment, oldest first, as the API shows a refund."""
        owner = merchants.get(self.ctx, (merchant or self.merchant).id)
        return [
            views.refund_view(refund)
            for refund in refunds.list_for_payment(self.ctx, owner, payment_id)
        ]

    # -- the worker, in process -------------------------------------------------------------

    def run_jobs(self, *, timeout: float = 30.0) -> dict[str, int]:
        """Run every job that is due now, as the worker would, until none is left: settle
        payments, captures and releases, process refunds, deliver webhooks, then feed the
        registered observers the events they have not seen. Jobs deferred to later (a pending
        answer's ``retry_after``, a webhook's back-off) wait for a later call. How many of
        each kind ran. Work that keeps coming due for ``timeout`` seconds: GatewayError."""
        ran = dict.fromkeys(JOB_KINDS, 0)
        run = {
            "payments": payments.process,
            "refunds": refunds.process,
            "payment_operations": payments.process_operation,
            "webhook_logs": webhooks.deliver,
        }
        deadline = time.monotonic() + timeout
        while True:
            due = recovery.due_work(self.ctx, 0.0)
            if not any(due.values()):
                break
            if time.monotonic() > deadline:
                raise GatewayError(f"jobs still coming due after {timeout}s: {due}")
            for kind, ids in due.items():
                for job_id in ids:
                    run[kind](self.ctx, job_id)
                    ran[kind] += 1
        ran["observers"] = self.feed_observers()
        return ran

    def settle(
        self, payment_id: str, *, merchant: KitMerchant | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Run due jobs until the payment is no longer ``pending`` (or ``timeout`` seconds
        pass: GatewayError); the payment as the API then shows it."""
        deadline = time.monotonic() + timeout
        while True:
            self.run_jobs()
            payment = self.payment(payment_id, merchant=merchant)
            if payment["status"] != "pending":
                return payment
            if time.monotonic() > deadline:
                raise GatewayError(f"payment {payment_id} still pending after {timeout}s")
            time.sleep(0.05)

    # -- what happened ----------------------------------------------------------------------

    def events(self, *, merchant: KitMerchant | None = None) -> list[Event]:
        """The events this gateway recorded (of every merchant, or of ``merchant``), in order,
        as observers receive them."""
        # The gateway's event log (migration 012), read here for tests until the core has a
        # reader of its own.
        query = "SELECT seq, id, merchant_id, event, resource_id, body, created_at FROM events"
        query += " WHERE seq > %s"
        params: list[Any] = [self._first_sequence]
        if merchant is not None:
            query += " AND merchant_id = %s"
            params.append(merchant.id)
        with self.ctx.db.connection() as conn:
            rows: list[Any] = conn.execute(query + " ORDER BY seq", params).fetchall()
        return [event_from_row(row) for row in rows]

    def feed_observers(self) -> int:
        """:meth:`feed` every registered observer (``ctx.plugins.observers``). How many
        ``observe`` calls returned."""
        events = self.events()
        return sum(self.feed(observer, events) for observer in self.ctx.plugins.observers.values())

    def feed(
        self, observer: Observer, events: list[Event] | None = None, *, key: str | None = None
    ) -> int:
        """Hand ``observer``, in order, this gateway's events it has not yet seen: its position
        is kept under ``key``, by default its name (as the gateway keeps it; the registered
        observers are fed under their names). When ``observe`` raises, the same event comes
        again at the next call, and nothing after it meanwhile. How many ``observe`` calls
        returned."""
        name = key or observer.name
        done = 0
        position = self.observer_positions.get(name, self._first_sequence)
        for event in self.events() if events is None else events:
            if event.sequence <= position:
                continue
            try:
                observer.observe(event)
            except Exception:
                self.observer_failures[name] = self.observer_failures.get(name, 0) + 1
                break
            position = self.observer_positions[name] = event.sequence
            done += 1
        return done


def event_from_row(row: Mapping[str, Any]) -> Event:
    """An ``events`` row as the :class:`paygate.Event` an observer receives."""
    body = row["body"].encode("utf-8") if isinstance(row["body"], str) else bytes(row["body"])
    created: datetime = row["created_at"]
    return Event(
        id=str(row["id"]),
        type=row["event"],
        merchant_id=str(row["merchant_id"]),
        resource_id=row["resource_id"],
        created_at=created,
        data=orjson.loads(body).get("data", {}),
        body=body,
        sequence=int(row["seq"]),
    )
