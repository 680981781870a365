"""Several nodes on one PostgreSQL and one Redis: killed at random, restarted one by one.

**Multi-node kills.** Two API processes (gunicorn, two workers each) and three worker nodes
(``paygate worker``, each its own process group with its own janitor, heartbeat and observer
threads) share one database and one Redis. For 45 s payments are created through both APIs
(and a merchant refunds payments as they succeed) while worker nodes are SIGKILLed (the whole
process group) and restarted at random (seeded; every kill and restart is printed), sometimes
two down at once; one API process is SIGKILLed mid-load and started again. Then the load stops
and everything must drain: 0 lost, exactly one money movement per payment and refund at the
processor's ledger, every final webhook delivered, and a repeated delivery only ever the same
event again (the same ``webhook-id``: what "at least once" allows, docs/webhooks.md).

**Rolling restart.** Three API processes behind a round-robin balancer with readiness
(tests/chaos/balancer.py) under a steady load of creates and reads; each API in turn is taken
out of rotation, left to finish its open connections, SIGTERMed (gunicorn stops gracefully),
started again on its port and put back once ``/health`` answers. Then each worker node in turn
gets SIGTERM and a successor. Every request must get a 2xx answer and every payment settle.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
import requests

from tests.chaos.balancer import Balancer
from tests.chaos.load import Refunder, create_payments, payment_body
from tests.chaos.nodes import Nodes, free_ports
from tests.chaos.run import FINAL_EVENTS
from tests.fixtures import AUTH

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

SEED = 5
LOAD_SECONDS = 45.0
RATE_PER_API = 6.0  # payments per second through each API process
API_KILL_AT = 18.0  # seconds into the load
DRAIN_TIMEOUT = 60.0


def event_ids(run, ids: list[str]) -> dict[tuple[str, str], set[str]]:
    """(final event, payment or refund id) -> the ``webhook-id`` of every delivery of it."""
    wanted = set(ids)
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in list(run.receiver.requests):
        doc = json.loads(request.body)
        resource = doc["data"].get("payment") or doc["data"].get("refund") or {}
        if doc["event"] in FINAL_EVENTS and resource.get("id") in wanted:
            headers = {name.lower(): value for name, value in request.headers.items()}
            seen[(doc["event"], resource["id"])].add(headers.get("webhook-id"))
    return seen


def wait_none_pending(run, timeout: float) -> int:
    """Payments created but never acknowledged (the answer was lost with a killed API) must
    settle too: how many are still pending after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (pending := run.pending_all()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pending


def test_nodes_killed_and_restarted_at_random_lose_nothing_and_charge_once(
    chaos_run, record_figures
):
    run = chaos_run("multinode")
    nodes = Nodes.start(run, apis=2, workers=3, api_workers=2, concurrency=6)
    rng = random.Random(SEED)
    stop = threading.Event()
    kills: list[str] = []
    restarts: list[str] = []
    api_down: list[float] = []

    def chaos() -> None:
        down: dict[int, float] = {}  # node -> when it comes back
        next_kill = time.monotonic() + rng.uniform(2.0, 5.0)
        api_kill = time.monotonic() + API_KILL_AT
        while not stop.wait(0.05):
            now = time.monotonic()
            for i, back in sorted(down.items()):
                if now >= back:
                    nodes.start_worker(i)
                    nodes.log(f"worker-{i} started again")
                    restarts.append(f"worker-{i}")
                    del down[i]
            if now >= next_kill:
                up = [i for i in range(nodes.workers) if i not in down]
                if len(up) > 1:  # at most two of three down at once
                    victim = rng.choice(up)
                    nodes.kill_worker(victim)
                    kills.append(f"worker-{victim}")
                    down[victim] = time.monotonic() + rng.uniform(0.5, 4.0)
                next_kill = now + rng.uniform(2.0, 5.0)
            if api_kill and now >= api_kill:
                api_kill = 0.0
                began = time.monotonic()
                nodes.stop_api(1, signal.SIGKILL)
                kills.append("api-1")
                nodes.start_api(1)
                api_down.append(round(time.monotonic() - began, 1))
                nodes.log(f"api-1 started again, healthy after {api_down[-1]} s")
                restarts.append("api-1")
        for i in sorted(down):  # the load is over: every node comes back for the drain
            nodes.start_worker(i)
            nodes.log(f"worker-{i} started again (end)")
            restarts.append(f"worker-{i}")

    thread = threading.Thread(target=chaos, daemon=True)
    thread.start()
    refunder = Refunder(run).start()  # through api-0, which is never killed
    count = int(RATE_PER_API * LOAD_SECONDS)
    loads: list = [None, None]

    def load(i: int) -> None:
        loads[i] = create_payments(nodes.url(i), count, clients=4, rate=RATE_PER_API)

    load_threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in (0, 1)]
    started = time.monotonic()
    for t in load_threads:
        t.start()
    for t in load_threads:
        t.join()
    load_seconds = time.monotonic() - started
    refunder.stop()
    stop.set()
    thread.join()

    ids = loads[0].payment_ids + loads[1].payment_ids
    refund_ids = refunder.refund_ids
    drain, problem = run.try_drain(ids, DRAIN_TIMEOUT, refund_ids)
    unacknowledged_pending = wait_none_pending(run, 10.0)
    charges, refunded = run.charges(), run.refunds_moved()
    deliveries = event_ids(run, ids + refund_ids)
    answers = loads[0].statuses + loads[1].statuses
    figures = {
        "apis": 2,
        "worker_nodes": 3,
        "seed": SEED,
        "payments": len(ids),
        "refunds": len(refund_ids),
        "kills": len(kills),
        "restarts": len(restarts),
        "api_down_seconds": api_down,
        "failed_requests": {str(k): n for k, n in answers.items() if k != 201},
        "settled": len(ids) - run.pending(ids),
        "lost": run.pending(ids),
        "unacknowledged_pending": unacknowledged_pending,
        "rescued": run.rescued(ids),
        "statuses": dict(run.statuses(ids)),
        "charged_once": sum(1 for i in ids if charges[i] == 1),
        "charged_twice_or_more": sum(1 for n in charges.values() if n > 1),
        "refunded_once": sum(1 for i in refund_ids if refunded[i] == 1),
        "duplicates": run.duplicates(ids + refund_ids),
        "distinct_events_repeated": sum(1 for hooks in deliveries.values() if len(hooks) > 1),
        "processor_calls": dict(run.processor_calls()),
        "load_seconds": round(load_seconds, 1),
        "drain_seconds": drain,
    }
    record_figures(**figures)
    print("[nodes] " + "\n[nodes] ".join(nodes.events))
    assert problem is None, problem
    # api-0 never went away: every call to it answered 201. api-1 was SIGKILLed once: calls
    # in flight then, and until it was back, failed at the connection, never with a status.
    assert loads[0].failures == [], loads[0].failures[:5]
    assert all(isinstance(k, str) for k in loads[1].statuses if k != 201), loads[1].failures[:5]
    assert refunder.failures == [], refunder.failures[:5]
    assert "api-1" in kills and figures["kills"] >= 6, nodes.events
    assert figures["lost"] == 0 and unacknowledged_pending == 0
    assert figures["charged_once"] == len(ids), figures
    assert figures["charged_twice_or_more"] == 0, figures
    assert figures["refunds"] > 0 and figures["refunded_once"] == figures["refunds"], figures
    assert run.undelivered(ids, refund_ids) == []
    # At least once: a repeat is the same event (same webhook-id), never a second one.
    assert figures["distinct_events_repeated"] == 0, figures


# -- rolling restart ---------------------------------------------------------------------------


@dataclass
class SteadyLoad:
    """Clients creating payments and reading them back through the balancer at a steady pace.

    No retries (a retry would hide a failure) and no keep-alive: every request goes on a new
    connection with ``Connection: close``, because the balancer, like a Kubernetes Service,
    balances connections; a kept-alive connection would stay on a backend leaving rotation,
    and "its connections are done" would never mean "its requests are done"."""

    url: str
    clients: int = 6
    rate: float = 10.0  # payments per second, all clients together
    answers: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    payment_ids: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> SteadyLoad:
        self.started = time.monotonic()
        self._counter = iter(range(10**9))
        self._threads = [
            threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.seconds = time.monotonic() - self.started

    @property
    def requests(self) -> int:
        return sum(self.answers.values())

    def _call(self, method: str, path: str, **kwargs) -> requests.Response | None:
        headers = {**AUTH, "Connection": "close"}
        try:
            answer = requests.request(
                method, self.url + path, headers=headers, timeout=15, **kwargs
            )
        except requests.RequestException as exc:
            with self._lock:
                self.answers[exc.__class__.__name__] += 1
                self.failures.append(f"{method} {path}: {exc!r}")
            return None
        with self._lock:
            self.answers[answer.status_code] += 1
            if not 200 <= answer.status_code < 300:
                self.failures.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        return answer if 200 <= answer.status_code < 300 else None

    def _client(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                i = next(self._counter)
            time.sleep(max(0.0, self.started + i / self.rate - time.monotonic()))
            if self._stop.is_set():
                return
            order = self._call("POST", "/api/v1/orders", json={"amount": 20000 + i})
            if order is None:
                continue
            payment = self._call(
                "POST", "/api/v1/payments", json=payment_body(i, order.json()["id"])
            )
            if payment is None:
                continue
            payment_id = payment.json()["id"]
            with self._lock:
                self.payment_ids.append(payment_id)
            self._call("GET", f"/api/v1/payments/{payment_id}")


def test_rolling_restart_of_every_api_and_worker_fails_no_request(chaos_run, record_figures):
    run = chaos_run("rolling restart")
    nodes = Nodes.start(run, apis=3, workers=2, api_workers=1, concurrency=8)
    (port,) = free_ports(1, taken=tuple(nodes.api_ports))
    balancer = Balancer(port, list(nodes.api_ports)).start()
    load = SteadyLoad(balancer.url).start()
    steps: list[dict] = []
    try:
        time.sleep(3.0)
        for i, backend in enumerate(nodes.api_ports):
            began = time.monotonic()
            balancer.remove(backend)
            in_flight = balancer.open[backend]
            drained = balancer.wait_idle(backend, timeout=20.0)
            stopped = nodes.stop_api(i, signal.SIGTERM)
            nodes.start_api(i)  # waits for /health: the readiness probe
            balancer.add(backend)
            steps.append(
                {
                    "api": i,
                    "in_flight": in_flight,
                    "drain": round(drained, 2),
                    "stop": round(stopped, 2),
                    "total": round(time.monotonic() - began, 1),
                }
            )
            nodes.log(f"api-{i} back in rotation: {steps[-1]}")
            time.sleep(1.0)
        for i in range(nodes.workers):
            began = time.monotonic()
            stopped = nodes.stop_worker(i, signal.SIGTERM)
            nodes.start_worker(i)
            steps.append({"worker": i, "stop": round(stopped, 2)})
            nodes.log(f"worker-{i} replaced after {time.monotonic() - began:.1f} s")
            time.sleep(1.0)
        time.sleep(2.0)
    finally:
        load.stop()
        balancer.close()

    ids = load.payment_ids
    drain, problem = run.try_drain(ids, DRAIN_TIMEOUT)
    charges = run.charges()
    figures = {
        "apis": 3,
        "worker_nodes": 2,
        "requests": load.requests,
        "answers": {str(k): n for k, n in load.answers.items()},
        "failed_requests": len(load.failures),
        "refused_by_balancer": len(balancer.refused),
        "payments": len(ids),
        "restarts": len(steps),
        "steps": steps,
        "connections_per_api": [balancer.served[p] for p in nodes.api_ports],
        "settled": len(ids) - run.pending(ids),
        "lost": run.pending(ids),
        "statuses": dict(run.statuses(ids)),
        "charged_once": sum(1 for i in ids if charges[i] == 1),
        "charged_twice_or_more": sum(1 for n in charges.values() if n > 1),
        "load_seconds": round(load.seconds, 1),
        "drain_seconds": drain,
    }
    record_figures(**figures)
    assert load.failures == [], load.failures[:5]
    assert balancer.refused == [], balancer.refused[:5]
    assert all(isinstance(k, int) and 200 <= k < 300 for k in load.answers), load.answers
    assert figures["payments"] > 100 and load.requests >= 3 * len(ids), figures
    assert problem is None, problem
    assert figures["lost"] == 0
    assert figures["charged_once"] == len(ids) and figures["charged_twice_or_more"] == 0, figures
