"""Data at rest after the fault tests: no full card number, CVV or holder name in any log, the
database (pg_dump), Redis (live keys, samples taken under traffic, its files) or webhook bodies,
and no unkeyed hash (MD5, SHA-1, SHA-256) of a card body, a card number or a card number with
its CVV anywhere either (``scan.find_derivatives``).

Runs last (tests/chaos/conftest.py) so it also reads everything the fault tests left behind,
and adds its own card traffic first, error paths included, so it never scans an empty record.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import replace

import pytest
import requests

from tests.chaos.load import CARDS, CVV, HOLDER, payment_body
from tests.chaos.run import WEBHOOK_BODIES
from tests.chaos.scan import Needles, find_derivatives, find_leaks, read_files
from tests.fixtures import AUTH

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

NOT_LUHN = "4111111111111112"
NEEDLES = Needles(card_numbers=(*CARDS, NOT_LUHN), cvv=CVV, holder=HOLDER)


def card_traffic(base_url: str, sent: list[dict] | None = None) -> list[str]:
    """Card payments the ways a merchant sends them, and the ways they go wrong; the bodies
    that carried a card are added to ``sent``."""
    sent = [] if sent is None else sent
    s = requests.Session()
    s.headers.update(AUTH)
    api = base_url + "/api/v1"
    paid = []
    for i in range(0, 4 * len(CARDS) * 3, 4):
        order = s.post(f"{api}/orders", json={"amount": 50000}).json()
        body = payment_body(i, order["id"])
        sent.append(body)
        key = {"Idempotency-Key": f"scan-{i}"}
        first = s.post(f"{api}/payments", json=body, headers=key)
        assert first.status_code == 201, first.text
        replay = s.post(f"{api}/payments", json=body, headers=key)
        assert replay.content == first.content
        paid.append(first.json()["id"])
        # The checkout page's way: its own order, an Idempotency-Key with every payment.
        other = s.post(f"{api}/orders", json={"amount": 50000}).json()
        public_body = payment_body(i, other["id"])
        sent.append(public_body)
        public_key = {"Idempotency-Key": f"scan-public-{i}"}
        public = requests.post(f"{api}/payments/public", json=public_body, headers=public_key)
        assert public.status_code == 201, public.text
        paid.append(public.json()["id"])
    order = s.post(f"{api}/orders", json={"amount": 50000}).json()
    good = payment_body(0, order["id"])
    bad_cards = [
        {**good["card"], "number": NOT_LUHN},
        {**good["card"], "expiry_year": "20"},
        {**good["card"], "cvv": CVV + "x"},
        {**good["card"], "number": int(CARDS[0])},
        {**good["card"], "expiry_month": 13},
    ]
    for card in bad_cards:
        sent.append({**good, "card": card})
        answer = s.post(f"{api}/payments", json={**good, "card": card})
        assert answer.status_code == 400, answer.text
    broken = f'{{"order_id": "{order["id"]}", "method": "card", "card": {{"number": "{CARDS[0]}"'
    headers = {"Content-Type": "application/json"}
    assert s.post(f"{api}/payments", data=broken, headers=headers).status_code == 400
    huge = {**good, "padding": "x" * 100_000}
    assert s.post(f"{api}/payments", json=huge).status_code in (400, 413)
    return paid


def test_no_card_data_at_rest_anywhere(chaos_run, record_figures):
    # The scanner itself must find what it looks for, or a clean result means nothing.
    planted = b'{"card": {"number": "4111 1111 1111 1111", "cvv": "%s"}}' % CVV.encode()
    assert len(find_leaks([("planted", planted)], NEEDLES, strict=True)) >= 3
    assert find_leaks([("hex", planted.hex().encode())], NEEDLES, strict=True)
    digest = hashlib.sha256(f"{CARDS[0]}{CVV}".encode()).hexdigest()
    assert find_derivatives([("planted digest", digest.encode())], NEEDLES)

    # Twelve public payments from one client in seconds: over the default per-client limit.
    run = chaos_run("scan", TEST_PROCESSING_DELAY="300", PAYGATE_LIMIT_PUBLIC_IP="100/60")
    run.start(consumers=2, concurrency=4, api_workers=1)
    servers = run.servers
    samples: list[bytes] = []
    sampling = threading.Event()

    def sample_redis() -> None:
        while not sampling.wait(0.05):
            samples.append(servers.redis_contents())

    sampler = threading.Thread(target=sample_redis, daemon=True)
    sampler.start()
    sent: list[dict] = []
    paid = card_traffic(run.gateway.url, sent)
    run.wait_drained(paid, timeout=30)
    sampling.set()
    sampler.join()
    for payment_id in paid[:4]:
        refund = run.gateway.api_call(
            "POST", f"/api/v1/payments/{payment_id}/refunds", json={"amount": 100}
        )
        assert refund.status_code in (201, 400), refund.text  # declined cards: not refundable
    samples.append(servers.redis_contents())
    run.close()  # processes stopped and logs flushed; webhook bodies written out

    dumps = [(f"pg_dump {name}", servers.pg_dump(name)) for name in servers.databases]
    strict = [
        *dumps,
        ("redis live keys", servers.redis_contents()),
        *((f"redis sample {n}", data) for n, data in enumerate(samples)),
        *((f"redis file {name}", data) for name, data in read_files(servers.redis_files())),
        *read_files(servers.root.rglob(WEBHOOK_BODIES)),
    ]
    logs = read_files(servers.log_files())
    # What a scan must have seen to mean anything: card payments in the record and the bodies.
    card_row = re.compile(rb"\t(visa|mastercard)\t\d{4}\t")  # COPY data: network, last4
    assert all(card_row.search(data) for _, data in dumps), "a dump without card payments"
    card_body = re.compile(rb'"card_last4":"\d{4}"')
    assert any(card_body.search(data) for name, data in strict if WEBHOOK_BODIES in name)
    assert any(b"process_payment" in data for name, data in strict if "redis" in name)
    assert any(name.endswith("api.log") for name, _ in logs)

    leaks = find_leaks(strict, NEEDLES, strict=True) + find_leaks(logs, NEEDLES, strict=False)
    leaks += find_derivatives(strict + logs, replace(NEEDLES, bodies=tuple(sent)))
    record_figures(
        databases=len(dumps),
        redis_sources=sum(1 for name, _ in strict if "redis" in name),
        webhook_body_files=sum(1 for name, _ in strict if WEBHOOK_BODIES in name),
        log_files=len(logs),
        megabytes_scanned=round(sum(len(d) for _, d in strict + logs) / 1e6, 1),
        leaks=len(leaks),
    )
    assert leaks == []
