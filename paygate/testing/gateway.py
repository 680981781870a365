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
from typing import Any

import falcon.testing

from ..config import Settings
from ..db.events import LogPosition, ObserverPosition, log_position
from ..embedded import Scratch, scratch
from ..plugins import Plugins
from ..services import (
    Context,
    merchants,
    observers,
    payments,
    recovery,
    refunds,
    views,
    webhooks,
)
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
# How long reading the event log may wait for older transactions on the server to end.
SETTLE_SECONDS = 30.0
READ_BATCH = 500  # events read from the log at a time
OBSERVER_LEASE_SECONDS = 30.0  # the lease a feed holds on an observer (released by close())


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

    def webhooks(self, log_ids: list[str]) -> bool:
        return self._count("webhook_logs", len(log_ids))

    def created(self, payment_id: str, log_ids: list[str]) -> bool:
        return self.payment(payment_id) and self.webhooks(log_ids)

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
        # A feed holds an observer's lease under this name (and gives it up when it returns);
        # each failed ``observe`` call is counted here by observer name (the bookkeeping row
        # keeps the last error).
        self.holder = f"kit:{secrets.token_hex(4)}"
        self.observer_failures: dict[str, int] = {}
        self._fed: set[str] = set()  # observer names started at this gateway's first event
        self._start = observers.last_recorded(ctx)
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
        body = result.json
        if not isinstance(body, dict):
            raise GatewayError(f"{what} answered {body!r}, not a JSON object")
        return body

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

    def events(
        self, *, merchant: KitMerchant | None = None, timeout: float = SETTLE_SECONDS
    ) -> list[Event]:
        """The events this gateway recorded (of every merchant, or of ``merchant``), in the
        order observers receive them (the event log's reader: by transaction, then sequence).
        Every event committed before the call is in the answer: the reader returns an event
        only once every older transaction on the server has ended, so this waits for that, up
        to ``timeout`` seconds (GatewayError after)."""
        target = self._settled(timeout)
        found: list[Event] = []
        position = self._start
        while position < target:
            batch = observers.next_events(self.ctx, position, READ_BATCH)
            if not batch:
                break
            found += [logged.event for logged in batch if logged.position <= target]
            position = batch[-1].position
        if merchant is not None:
            return [event for event in found if event.merchant_id == merchant.id]
        return found

    def _settled(self, timeout: float) -> LogPosition:
        """Wait until the event log's reader sees every event committed so far; where the
        last of them sits."""
        target = observers.last_recorded(self.ctx)
        deadline = time.monotonic() + timeout
        while observers.settled_head(self.ctx) < target:
            if time.monotonic() > deadline:
                raise GatewayError(
                    f"events still not readable after {timeout}s: a transaction on the "
                    "database server that began before them is still open"
                )
            time.sleep(0.02)
        return target

    def feed_observers(self) -> int:
        """:meth:`feed` every registered observer (``ctx.plugins.observers``). How many
        ``observe`` calls returned."""
        return sum(self.feed(observer) for observer in list(self.ctx.plugins.observers.values()))

    def feed(
        self, observer: Observer, *, key: str | None = None, timeout: float = SETTLE_SECONDS
    ) -> int:
        """Hand ``observer``, in order, every event of this gateway it has not yet finished,
        as the worker's observer runner does (``paygate.services.observers``): its position
        and failures are kept in the gateway's bookkeeping (``observer_positions``, what
        ``paygate observers`` shows) under ``key``, by default its name, and it moves past an
        event only once ``observe`` returned. The first time this gateway feeds a name, the
        position starts at the gateway's first event (an observer receives only the events of
        the gateway it is fed by). When ``observe`` raises, the failure is recorded and
        counted in ``observer_failures``, and the same event comes again at the next call
        (the kit does not wait out the worker's back-off), nothing after it meanwhile. The
        lease is held for the call only, as by a worker that then stops. How many ``observe``
        calls returned."""
        name = key or observer.name
        target = self._settled(timeout)
        if name not in self._fed:
            observers.start_at(self.ctx, name, self._start)
            self._fed.add(name)
        state = observers.claim(self.ctx, name, self.holder, OBSERVER_LEASE_SECONDS)
        if state is None:
            raise GatewayError(f"observer {name!r} is held by another worker")
        try:
            return self._feed(observer, name, state, target)
        finally:
            observers.release(self.ctx, name, self.holder)

    def _feed(
        self, observer: Observer, name: str, state: ObserverPosition, target: LogPosition
    ) -> int:
        """Feed ``observer`` (holding its lease as ``state``) up to ``target``."""
        position = log_position(state)
        attempts = state.attempts
        done = 0
        while position < target:
            batch = observers.next_events(self.ctx, position, READ_BATCH)
            for logged in batch:
                if logged.position > target:
                    return done
                try:
                    observer.observe(logged.event)
                except Exception as exc:
                    self.observer_failures[name] = self.observer_failures.get(name, 0) + 1
                    attempts += 1
                    delay = observers.delay_after(attempts, observers.backoff(self.ctx.settings))
                    observers.failed(
                        self.ctx,
                        name,
                        self.holder,
                        logged.event,
                        observers.describe_error(exc),
                        delay,
                        OBSERVER_LEASE_SECONDS,
                    )
                    return done
                if not observers.observed(
                    self.ctx, name, self.holder, logged, OBSERVER_LEASE_SECONDS
                ):
                    raise GatewayError(f"observer {name!r} was taken over by another worker")
                position, attempts = logged.position, 0
                done += 1
            if not batch:
                break
        return done
