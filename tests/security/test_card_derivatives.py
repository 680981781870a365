"""No card data in any stored derivative: after card payments with an Idempotency-Key (the
merchant API and the checkout page's public endpoint), no value in any table or Redis key is an
unkeyed hash (MD5, SHA-1, SHA-256; hex, base64) of a request body, a card number, or a card
number with its CVV. The idempotency fingerprint is a keyed MAC of a redacted body instead, and
keeps the Idempotency-Key semantics of docs/api.md."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import falcon.testing
import pytest
import redis

from paygate.api.app import create_app as create_api
from paygate.services import idempotency
from paygate.web.checkout.app import create_app as create_checkout
from tests.chaos.scan import Needles, find_derivatives, find_leaks
from tests.fixtures import AUTH

CARDS = ("4111111111111111", "5555555555554444", "4242424242424242")
CVV = "737"
HOLDER = "Derivative Q Cardholder"
JSON = {"Content-Type": "application/json"}


def card_body(order_id: str, number: str, cvv: str = CVV) -> bytes:
    return json.dumps(
        {
            "order_id": order_id,
            "method": "card",
            "card": {
                "number": number,
                "expiry_month": "12",
                "expiry_year": "39",
                "cvv": cvv,
                "holder_name": HOLDER,
            },
        }
    ).encode()


def new_order(api) -> str:
    result = api.simulate_post("/api/v1/orders", json={"amount": 50000}, headers=AUTH)
    assert result.status_code == 201, result.text
    return result.json["id"]


def table_contents(ctx) -> list[tuple[str, bytes]]:
    """Every value of every table, as text (``bytea`` as hex, as pg_dump writes it)."""
    sources = []
    with ctx.db.connection() as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
        for row in tables:
            name = row["table_name"]
            values = []
            for record in conn.execute(f'SELECT * FROM "{name}"').fetchall():
                for value in record.values():
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value)
                        values += [value.hex().encode(), value]
                    else:
                        values.append(str(value).encode())
            sources.append((f"table {name}", b"\n".join(values)))
    return sources


def redis_contents(redis_url: str) -> list[tuple[str, bytes]]:
    """Every Redis key (other runs' too: none of them holds our cards), whatever its type."""
    sources = []
    with redis.Redis.from_url(redis_url) as conn:
        for key in conn.scan_iter(count=1000):
            kind = conn.type(key).decode()
            if kind == "string":
                parts = [conn.get(key) or b""]
            elif kind == "list":
                parts = conn.lrange(key, 0, -1)
            elif kind == "set":
                parts = list(conn.smembers(key))
            elif kind == "zset":
                parts = [member for member, _ in conn.zrange(key, 0, -1, withscores=True)]
            elif kind == "hash":
                parts = [b for pair in conn.hgetall(key).items() for b in pair]
            else:
                parts = []
            sources.append((f"redis {key!r}", b"\n".join([key, *parts])))
    return sources


@pytest.fixture
def paid(ctx):
    """Card payments with Idempotency-Keys through both doors, replayed; the bodies sent."""
    api = falcon.testing.TestClient(create_api(ctx), headers=JSON)
    checkout = falcon.testing.TestClient(create_checkout(ctx), headers=JSON)
    sent = []
    for n, number in enumerate(CARDS):
        for door, path, headers in (
            (api, "/api/v1/payments", AUTH),
            (checkout, "/api/v1/payments/public", {}),
        ):
            body = card_body(new_order(api), number)
            key = {"Idempotency-Key": f"card-{n}-{path}"}
            first = door.simulate_post(path, body=body, headers={**headers, **key})
            assert first.status_code == 201, first.text
            again = door.simulate_post(path, body=body, headers={**headers, **key})
            assert again.content == first.content
            assert again.headers["idempotent-replayed"] == "true"
            sent.append(body)
    return sent


def test_no_unkeyed_hash_of_a_card_or_its_body_in_any_table_or_redis_key(ctx, paid, redis_url):
    needles = Needles(card_numbers=CARDS, cvv=CVV, holder=HOLDER, bodies=tuple(paid))
    # The scan finds what it looks for, or a clean result would mean nothing.
    planted = [
        ("sha256 hex", hashlib.sha256(paid[0]).hexdigest().upper().encode()),
        ("md5 of pan+cvv", b"x" + hashlib.md5(f"{CARDS[1]}{CVV}".encode()).hexdigest().encode()),
        ("sha1 of the pan", b'"' + hashlib.sha1(CARDS[2].encode()).hexdigest().encode() + b'"'),
    ]
    assert len(find_derivatives(planted, needles)) == 3
    old_fingerprint = hashlib.sha256(
        idempotency.PAYMENT_CREATE.encode()
        + b"\0\0"
        + json.dumps(json.loads(paid[0]), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert find_derivatives([("old fingerprint", old_fingerprint.encode())], needles)

    tables = table_contents(ctx)
    stored = tables + redis_contents(redis_url)
    # What the scan must have seen: the keys with their fingerprints, the queued payments.
    keys = next(data for name, data in tables if name == "table idempotency_keys")
    assert keys.count(b"card-") == len(paid)
    assert any(b"process_payment" in data for name, data in stored if name.startswith("redis"))
    derivatives = find_derivatives(stored, needles)
    assert derivatives == [], "\n".join(derivatives)
    assert find_leaks(stored, needles, strict=True) == []


def test_the_same_card_request_replays_and_a_different_card_is_422(ctx):
    api = falcon.testing.TestClient(create_api(ctx), headers={**JSON, **AUTH})
    order = new_order(api)

    def pay(body: bytes, key: str = "same-key"):
        return api.simulate_post("/api/v1/payments", body=body, headers={"Idempotency-Key": key})

    first = pay(card_body(order, CARDS[0]))
    assert first.status_code == 201
    # Key order and whitespace do not matter; the same card is the same request.
    reordered = json.dumps(dict(reversed(json.loads(card_body(order, CARDS[0])).items())))
    assert pay(reordered.encode()).content == first.content
    for other in (
        card_body(order, CARDS[1]),  # another card number
        card_body(order, CARDS[0]).replace(b'"39"', b'"38"'),  # another expiry
        card_body(order, CARDS[0]).replace(HOLDER.encode(), b"Someone Else"),  # holder
        card_body(order, CARDS[0]).replace(b'"card"', b'"upi"', 1),  # another method
    ):
        assert pay(other).status_code == 422, other
    # The CVV never enters the fingerprint: a retry that differs only in it is the same request.
    assert pay(card_body(order, CARDS[0], cvv="123")).content == first.content


def test_the_fingerprint_never_sees_the_cvv_and_keys_the_card(ctx, make_ctx):
    body = json.loads(card_body("order_x", CARDS[0]))
    redacted = idempotency.redacted(ctx, body)
    assert set(redacted["card"]) == {"mac"}
    # The MAC is hex and may hold "737" by chance: look everywhere but in it (the test above
    # shows the MAC does not depend on the CVV).
    around = json.dumps({**redacted, "card": {}})
    assert CVV not in around and CARDS[0] not in json.dumps(redacted)
    same = idempotency.fingerprint(ctx, idempotency.PAYMENT_CREATE, body)
    # Under another server key the same body has another fingerprint: nothing to brute-force.
    other = make_ctx(PAYGATE_SECRET_KEY="another server key of at least 32 bytes")
    assert idempotency.fingerprint(other, idempotency.PAYMENT_CREATE, body) != same


def test_migration_007_erases_unkeyed_fingerprints_and_their_keys_still_replay(ctx):
    api = falcon.testing.TestClient(create_api(ctx), headers={**JSON, **AUTH})
    body = card_body(new_order(api), CARDS[0])
    first = api.simulate_post("/api/v1/payments", body=body, headers={"Idempotency-Key": "old"})
    assert first.status_code == 201
    unkeyed = hashlib.sha256(
        idempotency.PAYMENT_CREATE.encode()
        + b"\0\0"
        + json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    migration = resources.files("paygate.db").joinpath(
        "migrations", "007_keyed_idempotency_fingerprints.sql"
    )
    with ctx.db.connection() as conn:  # a key stored before the upgrade, then the migration
        conn.execute("UPDATE idempotency_keys SET request_hash = %s", (unkeyed,))
        conn.execute(migration.read_text())
        stored = conn.execute("SELECT request_hash FROM idempotency_keys").fetchall()
    assert [row["request_hash"] for row in stored] == [idempotency.LEGACY_FINGERPRINT]
    again = api.simulate_post("/api/v1/payments", body=body, headers={"Idempotency-Key": "old"})
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
