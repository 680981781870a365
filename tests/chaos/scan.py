"""The data-at-rest scan: card numbers, CVVs and holder names must not be anywhere we keep data.

Each needle is looked for as typed (digits, grouped with spaces or dashes) and hex-encoded (how
pg_dump writes ``bytea``). A CVV is three or four digits that occur everywhere by chance, so it
counts as leaked only next to its field name; the field name itself (as a word, or a JSON key
in hex) must not be in the database, Redis or a webhook body at all.

Derivatives too (``find_derivatives``): an unkeyed hash of card data is as good as the data,
since a CVV (1,000 values) and an expiry (a few hundred) fall to brute force next to a stored
network and last four. So no MD5, SHA-1 or SHA-256 (hex, base64, base64url) may be stored of a
request body that carried a card (as sent, re-serialised the usual ways, or prefixed with an
idempotency operation's name as a fingerprint would be), of a card number, or of a card number
with its CVV (several concatenations).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from paygate.services import idempotency

DIGESTS = ("md5", "sha1", "sha256")
# The idempotency operations' names: a fingerprint is a body hashed after its operation's name
# (and target), so these layouts are what a brute force of a stored fingerprint tries first.
OPERATIONS = tuple(value for name, value in vars(idempotency).items() if "_CREATE" in name)
HEX_RUN = re.compile(rb"[0-9a-fA-F]{32,}")
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{22,}")


def _forms(text: str) -> list[bytes]:
    raw = text.encode()
    forms = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    if text.isdigit() and len(text) == 16:
        for sep in (" ", "-"):
            grouped = sep.join(text[i : i + 4] for i in range(0, 16, 4)).encode()
            forms += [grouped, grouped.hex().encode()]
    return forms


@dataclass(frozen=True)
class Needles:
    card_numbers: tuple[str, ...]
    cvv: str
    holder: str
    # The request bodies sent with card data (bytes as sent, or parsed JSON).
    bodies: tuple[Any, ...] = ()

    def patterns(self, strict: bool) -> list[tuple[str, re.Pattern[bytes]]]:
        """(what, pattern) pairs. ``strict`` (database, Redis, webhooks): no ``cvv`` at all."""
        found = [
            (f"card number {n[:4]}...{n[-4:]}", re.compile(re.escape(form)))
            for n in self.card_numbers
            for form in _forms(n)
        ]
        found += [("holder name", re.compile(re.escape(f), re.I)) for f in _forms(self.holder)]
        cvv = re.escape(self.cvv.encode())
        near = rb"(?i)(?<![a-z0-9])cvv[^0-9a-z]{0,8}" + cvv + rb"(?![0-9])"
        found.append(("cvv value", re.compile(near)))
        if strict:  # the word on its own (random ids contain "cVv"), or a JSON key in hex
            found.append(("cvv field", re.compile(rb"(?i)(?<![a-z0-9])cvv(?![a-z0-9])")))
            found += [("cvv field", re.compile(re.escape(f))) for f in _forms('"cvv"')[1:]]
        return found


def find_leaks(sources: Iterable[tuple[str, bytes]], needles: Needles, strict: bool) -> list[str]:
    """``where: what`` for every needle found in every (name, data) source."""
    patterns = needles.patterns(strict)
    leaks = []
    for name, data in sources:
        for what, pattern in patterns:
            match = pattern.search(data)
            if match:
                start = max(0, match.start() - 40)
                context = data[start : match.end() + 40].decode("utf-8", "replace")
                leaks.append(f"{name}: {what} in ...{context!r}...")
    return leaks


def read_files(paths: Iterable[Path]) -> list[tuple[str, bytes]]:
    return [(str(path), path.read_bytes()) for path in paths]


def table_contents(database_url: str) -> list[tuple[str, bytes]]:
    """(``table <name>``, every row as PostgreSQL prints it): every column of every table of
    every schema but the catalogue's, for a database reached by URL (no pg_dump needed)."""
    found = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table))
            rows = conn.execute(query).fetchall()
            data = "\n".join(row[0] for row in rows).encode()
            found.append((f"table {schema}.{table}", data))
    return found


def redis_contents(conn) -> bytes:
    """Every live key and value of a Redis connection (``redis.Redis``), as bytes."""
    out = []
    for key in conn.scan_iter(count=500):
        out.append(key)
        kind = conn.type(key).decode()
        if kind == "string":
            out.append(conn.get(key) or b"")
        elif kind == "list":
            out.extend(conn.lrange(key, 0, -1))
        elif kind == "set":
            out.extend(conn.smembers(key))
        elif kind == "zset":
            out.extend(conn.zrange(key, 0, -1))
        elif kind == "hash":
            for k, v in conn.hgetall(key).items():
                out.extend((k, v))
        elif kind == "stream":
            for entry_id, fields in conn.xrange(key):
                out.append(entry_id)
                for k, v in fields.items():
                    out.extend((k, v))
    return b"\n".join(out)


def digest_forms(data: bytes) -> dict[str, str]:
    """{stored form: algorithm} for each digest of ``data``: hex (lower case; the scan folds
    case), base64 and base64url without padding."""
    forms = {}
    for name in DIGESTS:
        digest = hashlib.new(name, data).digest()
        forms[digest.hex()] = f"{name} hex"
        forms[base64.b64encode(digest).decode().rstrip("=")] = f"{name} base64"
        forms[base64.urlsafe_b64encode(digest).decode().rstrip("=")] = f"{name} base64url"
    return forms


def body_preimages(body: Any) -> dict[bytes, str]:
    """{bytes: what} a body may have been hashed as: the bytes sent (when given as bytes), the
    usual re-serialisations of the parsed JSON, and each behind an operation's name."""
    found: dict[bytes, str] = {}
    if isinstance(body, bytes):
        found[body] = "body as sent"
        body = json.loads(body)
    serialised = {
        json.dumps(body).encode(): "json.dumps",
        json.dumps(body, separators=(",", ":")).encode(): "compact JSON",
        json.dumps(body, sort_keys=True).encode(): "sorted JSON",
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode(): "sorted compact JSON",
        json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(): "compact UTF-8",
        orjson.dumps(body): "orjson",
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS): "sorted orjson",
    }
    for data, what in serialised.items():
        found.setdefault(data, what)
        for operation in OPERATIONS:
            for layout in (b"%s\0\0%s", b"%s\0%s", b"%s:%s", b"%s%s"):
                found.setdefault(layout % (operation.encode(), data), f"{operation} + {what}")
    return found


def card_preimages(number: str, cvv: str, expiry: tuple[str, str] = ("12", "39")) -> dict:
    """{bytes: what}: the card number (digits, grouped) alone and with its CVV and expiry."""
    month, year = expiry
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    found = {number.encode(): "card number", grouped.encode(): "card number (grouped)"}
    for sep in ("", ":", "|", " ", ",", "\0", "\n"):
        found[f"{number}{sep}{cvv}".encode()] = f"card number + cvv ({sep!r})"
        found[f"{cvv}{sep}{number}".encode()] = f"cvv + card number ({sep!r})"
        for expiry_text in (f"{month}{year}", f"{month}/{year}", f"{month}{sep}{year}"):
            found[f"{number}{sep}{expiry_text}{sep}{cvv}".encode()] = "card number + expiry + cvv"
            found[f"{number}{sep}{expiry_text}".encode()] = "card number + expiry"
    return found


def derivative_needles(needles: Needles) -> dict[str, str]:
    """{stored form of a digest: what it is a digest of} for everything ``needles`` knows."""
    preimages: dict[bytes, str] = {}
    for n, body in enumerate(needles.bodies):
        for data, what in body_preimages(body).items():
            preimages.setdefault(data, f"request body {n} ({what})")
    for number in needles.card_numbers:
        for data, what in card_preimages(number, needles.cvv).items():
            preimages.setdefault(data, f"{what} {number[:4]}...{number[-4:]}")
    found = {}
    for data, what in preimages.items():
        for form, algorithm in digest_forms(data).items():
            found[form.lower() if algorithm.endswith("hex") else form] = f"{algorithm} of {what}"
    return found


def _candidates(data: bytes, lengths: set[int]) -> Iterable[str]:
    """Every hex window of a digest's length (at byte boundaries: a digest inside a longer
    ``bytea``), every base64-looking run, and its windows of a digest's length when it is
    short enough to be a field rather than a blob."""
    hex_lengths = {n for n in lengths if n in (32, 40, 64)}
    for run in HEX_RUN.findall(data):
        text = run.decode().lower()
        for length in hex_lengths:
            for start in range(0, len(text) - length + 1, 2):
                yield text[start : start + length]
    for run in BASE64_RUN.findall(data):
        text = run.decode()
        yield text
        if len(text) <= 512:
            for length in lengths - hex_lengths:
                for start in range(len(text) - length + 1):
                    yield text[start : start + length]


def find_derivatives(sources: Iterable[tuple[str, bytes]], needles: Needles) -> list[str]:
    """``where: what`` for every stored unkeyed digest of card data or of a card body."""
    wanted = derivative_needles(needles)
    lengths = {len(form) for form in wanted}
    leaks = []
    for name, data in sources:
        seen = set()
        for candidate in _candidates(data, lengths):
            if candidate in wanted and candidate not in seen:
                seen.add(candidate)
                leaks.append(f"{name}: {wanted[candidate]} ({candidate})")
    return leaks
