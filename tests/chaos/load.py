"""Load and observation for the chaos suite: paying clients, a webhook receiver, the ledger.

The clients talk to the real gateway over HTTP like a merchant's server would; the receiver is
a real HTTP server that records every delivery; the processor ledger (written by the test-mode
processor in the worker processes) says how often money actually moved for each payment.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

import paygate.testing.receiver
from tests.fixtures import AUTH

# Card data the scan looks for afterwards: it must never come to rest anywhere.
CARDS = ("4111111111111111", "5555555555554444", "4242424242424242", "4000000000000002")
CVV = "737"
HOLDER = "Chaos Q Cardholder"


def payment_body(i: int, order_id: str) -> dict:
    """Every fourth payment is a card (one of them declined), the rest UPI (some failing)."""
    if i % 4 == 0:
        number = CARDS[(i // 4) % len(CARDS)]
        return {
            "order_id": order_id,
            "method": "card",
            "card": {
                "number": f"{number[:4]} {number[4:8]} {number[8:12]} {number[12:]}",
                "expiry_month": "12",
                "expiry_year": "39",
                "cvv": CVV,
                "holder_name": HOLDER,
            },
        }
    vpa = "failure@test" if i % 10 == 3 else f"buyer{i}@okaxis"
    return {"order_id": order_id, "method": "upi", "vpa": vpa}


@dataclass
class LoadResult:
    payment_ids: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def acknowledged(self) -> int:
        return len(self.payment_ids)


def create_payments(base_url: str, count: int, clients: int = 8, rate: float | None = None):
    """``count`` orders and payments from ``clients`` threads, at most ``rate`` payments/s.

    Every answer is counted by status; anything but 201 is kept in ``failures`` with its body.
    """
    result = LoadResult()
    lock = threading.Lock()
    next_index = iter(range(count))
    started = time.monotonic()

    def client() -> None:
        session = requests.Session()
        session.headers.update(AUTH)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            if rate:
                time.sleep(max(0.0, started + i / rate - time.monotonic()))
            pay_once(session, base_url, i, result, lock)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def pay_once(session, base_url: str, i: int, result: LoadResult, lock) -> None:
    try:
        order = session.post(f"{base_url}/api/v1/orders", json={"amount": 10000 + i}, timeout=15)
        answers = [order]
        if order.status_code == 201:
            payment = session.post(
                f"{base_url}/api/v1/payments",
                json=payment_body(i, order.json()["id"]),
                timeout=15,
            )
            answers.append(payment)
    except requests.RequestException as exc:
        with lock:
            result.statuses[exc.__class__.__name__] += 1
            result.failures.append(f"#{i}: {exc!r}")
        return
    with lock:
        for answer in answers:
            result.statuses[answer.status_code] += 1
            if answer.status_code != 201:
                result.failures.append(f"#{i}: {answer.status_code} {answer.text[:300]}")
        if len(answers) == 2 and answers[1].status_code == 201:
            result.payment_ids.append(answers[1].json()["id"])


class Receiver(paygate.testing.receiver.Receiver):
    """A merchant's webhook endpoint (the contract kit's receiver): answers 200 and remembers
    every delivery; a sender that dies mid-request delivered nothing."""

    def deliveries(self, *events: str) -> Counter:
        """How many times each (event, payment id) arrived."""
        seen: Counter = Counter()
        for body in self.bodies():
            doc = json.loads(body)
            if not events or doc["event"] in events:
                resource = doc["data"].get("payment") or doc["data"].get("refund") or {}
                seen[(doc["event"], resource.get("id"))] += 1
        return seen

    def close(self, keep_bodies_in: Path | None = None) -> None:
        """Stop; with ``keep_bodies_in``, write every body received there (for the scan)."""
        super().close()
        if keep_bodies_in is not None:
            keep_bodies_in.write_bytes(b"\n".join(self.bodies()))

    def bodies(self) -> list[bytes]:
        return [request.body for request in list(self.requests)]


def ledger_charges(ledger: Path, operation: str = "charge") -> Counter:
    """Money movements: for ``charge``, per payment (the test-mode processor's first charge for
    each key); for ``refund``, per refund id (its key)."""
    moved: Counter = Counter()
    directory = Path(f"{ledger}.d")
    for path in directory.glob(f"{operation}-*") if directory.exists() else ():
        _, key, payment_id = path.read_text().split()
        moved[payment_id if operation == "charge" else key] += 1
    return moved


class Refunder:
    """A merchant refunding payments as they succeed, while the load runs."""

    def __init__(self, run, amount: int = 100) -> None:
        self.run = run
        self.amount = amount
        self.refund_ids: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Refunder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        session = requests.Session()
        session.headers.update(AUTH)
        done: set[str] = set()
        while not self._stop.wait(0.2):
            rows = self.run.query(
                "SELECT id FROM payments WHERE status = 'success' ORDER BY settled_at DESC LIMIT 4"
            )
            for payment_id in (r["id"] for r in rows if r["id"] not in done):
                done.add(payment_id)
                url = f"{self.run.gateway.url}/api/v1/payments/{payment_id}/refunds"
                answer = session.post(url, json={"amount": self.amount}, timeout=15)
                if answer.status_code == 201:
                    self.refund_ids.append(answer.json()["id"])
                else:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")


def ledger_calls(ledger: Path) -> Counter:
    """Processor calls by operation (``charge``, ``charge-repeat``, ``sync``, ...)."""
    if not ledger.exists():
        return Counter()
    return Counter(line.split()[0] for line in ledger.read_text().splitlines() if line)
