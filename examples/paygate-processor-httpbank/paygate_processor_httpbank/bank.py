"""Httpbank: a small HTTP bank (acquirer) emulator, the PSP the ``httpbank`` plugin wraps.

Run it as its own server::

    python -m paygate_processor_httpbank.bank --port 8700 \\
        --account acct_demo:hb_key_demo:hb_whsec_demo [--state bank.json] [--admin-token T]

It speaks JSON with ``Authorization: Bearer <api key>``; every POST honours an
``Idempotency-Key`` (the same key answers the first answer again and never moves money twice).

=================================  =============================================================
``POST /v1/tokens``                card ``{number, exp_month, exp_year, cvc, name}`` or
                                   ``{vpa}`` -> ``{"token": "tok_..."}`` or 402 with a code
``POST /v1/charges``               ``{token, amount, currency, capture, return_url,
                                   callback_url}`` -> a charge (``requires_action`` for cards)
``GET  /v1/charges/{id}``          the charge (``GET /v1/charges?idempotency_key=K`` finds one)
``POST /v1/charges/{id}/capture``  ``{amount}`` (partial allowed, once)
``POST /v1/charges/{id}/void``     releases an uncaptured authorization
``POST /v1/refunds``               ``{charge, amount}`` (partial, within what was captured)
``GET  /v1/refunds/{id}``          the refund
``GET  /challenge/{id}``           the 3-D Secure page (buttons ``challenge-approve`` /
                                   ``challenge-deny``); the choice is POSTed back to it
``POST /admin/accounts``           a new account (``--admin-token`` required)
=================================  =============================================================

After the buyer's choice the bank POSTs a signed callback to the charge's ``callback_url``
(header ``Httpbank-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the
account's signing secret>``) and redirects the buyer to ``return_url``.

Card numbers, CVVs and expiry dates are never stored, logged or written to the state file: a
token keeps only what the bank decides with (network, last 4, whether it is expired, which test
behaviour it has). Test values are listed in the README.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SIGNATURE_HEADER = "Httpbank-Signature"
CALLBACK_TIMEOUT = 5.0
CALLBACK_RETRIES = (1, 2, 5, 10)  # seconds between callback attempts after a failed one
MAX_BODY = 64 * 1024
VPA = re.compile(r"^[A-Za-z0-9._-]{2,256}@[A-Za-z][A-Za-z0-9]{1,64}$")

# Test cards (README): a refusal at tokenization, or a behaviour at authorization.
TOKENIZE_REFUSALS = {
    "4000000000000002": ("CARD_DECLINED", "The card was declined by its issuer"),
    "4000000000000069": ("EXPIRED_CARD", "The card has expired"),
    "4000000000000127": ("INCORRECT_CVV", "The card's security code is incorrect"),
}
CARD_BEHAVIOURS = {
    "4000000000009995": "insufficient_funds",
    "4000000000000077": "frictionless",  # no 3-D Secure challenge
}
# Magic amounts (paise modulo 100) for any method.
AMOUNT_DECLINES = {
    51: ("INSUFFICIENT_FUNDS", "Insufficient funds in the account"),
    52: ("CARD_DECLINED", "Declined by the issuer"),
}
CAPTURE_DECLINED_PAISE = 53  # a capture of such an amount is refused
REFUND_DECLINED_PAISE = 54  # a refund of such an amount is refused
DECLINED_VPA = "declined@httpbank"
MAX_AMOUNT = 100_000_000  # paise: the bank's own per-charge limit (₹10,00,000)


class BankError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def network_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"60", "65", "81", "82"}:
        return "rupay"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "unknown"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Httpbank-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


class Bank:
    """The bank's books: accounts, tokens, charges, refunds and idempotent answers, behind one
    lock, optionally persisted to a JSON file (never holding card numbers or CVVs)."""

    def __init__(
        self,
        public_url: str,
        state_file: Path | None = None,
        challenge_timeout: float = 600.0,
    ):
        self.public_url = public_url.rstrip("/")
        self.state_file = state_file
        self.challenge_timeout = challenge_timeout
        self.lock = threading.RLock()
        self.accounts: dict[str, dict[str, str]] = {}  # api key -> account
        self.tokens: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, list[Any]] = {}  # "account|route|key" -> [status, body]
        if state_file and state_file.exists():
            saved = json.loads(state_file.read_text())
            for name in ("accounts", "tokens", "charges", "refunds", "answers"):
                getattr(self, name).update(saved.get(name, {}))

    def _save(self) -> None:
        if not self.state_file:
            return
        data = {
            name: getattr(self, name)
            for name in ("accounts", "tokens", "charges", "refunds", "answers")
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_file)

    # -- accounts ----------------------------------------------------------------------------

    def add_account(self, account_id: str, api_key: str, signing_secret: str) -> dict[str, str]:
        with self.lock:
            account = {"id": account_id, "api_key": api_key, "signing_secret": signing_secret}
            self.accounts[api_key] = account
            self._save()
            return account

    def account_for(self, authorization: str | None) -> dict[str, str]:
        scheme, _, key = (authorization or "").partition(" ")
        account = self.accounts.get(key.strip()) if scheme.lower() == "bearer" else None
        if account is None:
            raise BankError(401, "UNAUTHORIZED", "Unknown or missing API key")
        return account

    # -- idempotency -------------------------------------------------------------------------

    def idempotent(self, account: dict, route: str, key: str | None, work) -> tuple[int, dict]:
        """Answer ``work()`` once per (account, route, key); the same answer afterwards."""
        if not key:
            return work()
        slot = f"{account['id']}|{route}|{key}"
        with self.lock:
            if slot in self.answers:
                status, body = self.answers[slot]
                if body.get("object") == "charge" and body.get("id") in self.charges:
                    # a charge is answered as it is now (a replay after a lost answer must
                    # see the outcome the first call led to, not the first snapshot)
                    charge = self.charges[body["id"]]
                    self._expire(charge)
                    body = public(charge)
                return status, body
            status, body = work()
            if status < 500:
                self.answers[slot] = [status, body]
                self._save()
            return status, body

    # -- tokens ------------------------------------------------------------------------------

    def tokenize(self, account: dict, body: dict) -> tuple[int, dict]:
        card, vpa = body.get("card"), body.get("vpa")
        if isinstance(card, dict):
            facts = self._card_facts(card)
        elif isinstance(vpa, str):
            if not VPA.match(vpa):
                raise BankError(402, "INVALID_VPA", "The UPI address does not exist")
            facts = {"method": "upi", "vpa": vpa, "behaviour": None}
        else:
            raise BankError(400, "BAD_REQUEST", "Send a card or a vpa")
        token = new_id("tok_")
        with self.lock:
            self.tokens[token] = {"account": account["id"], **facts}
            self._save()
        return 200, {"token": token, "method": facts["method"], "last4": facts.get("last4")}

    def _card_facts(self, card: dict) -> dict[str, Any]:
        number = re.sub(r"[\s-]", "", str(card.get("number", "")))
        if not (12 <= len(number) <= 19 and number.isdigit() and luhn_ok(number)):
            raise BankError(402, "CARD_DECLINED", "The card number is not valid")
        if number in TOKENIZE_REFUSALS:
            code, message = TOKENIZE_REFUSALS[number]
            raise BankError(402, code, message)
        try:
            month, year = int(card.get("exp_month")), int(card.get("exp_year"))
        except (TypeError, ValueError):
            raise BankError(402, "EXPIRED_CARD", "The card's expiry date is not valid") from None
        now = datetime.now(UTC)
        if not 1 <= month <= 12 or (year, month) < (now.year, now.month):
            raise BankError(402, "EXPIRED_CARD", "The card has expired")
        cvc = str(card.get("cvc", ""))
        if not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise BankError(402, "INCORRECT_CVV", "The card's security code is incorrect")
        return {
            "method": "card",
            "network": network_of(number),
            "last4": number[-4:],
            "behaviour": CARD_BEHAVIOURS.get(number),
        }

    # -- charges -----------------------------------------------------------------------------

    def create_charge(self, account: dict, body: dict, key: str | None) -> tuple[int, dict]:
        token = self.tokens.get(str(body.get("token")))
        if token is None or token["account"] != account["id"]:
            raise BankError(400, "BAD_REQUEST", "Unknown token")
        amount = body.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise BankError(400, "BAD_REQUEST", "amount must be a positive integer (paise)")
        if body.get("currency", "INR") != "INR":
            raise BankError(400, "BAD_REQUEST", "Httpbank takes INR only")
        charge = {
            "id": new_id("ch_"),
            "object": "charge",
            "account": account["id"],
            "idempotency_key": key,
            "amount": amount,
            "currency": "INR",
            "method": token["method"],
            "last4": token.get("last4"),
            "capture": bool(body.get("capture", True)),
            "status": "processing",
            "amount_captured": 0,
            "amount_refunded": 0,
            "return_url": body.get("return_url"),
            "callback_url": body.get("callback_url"),
            "created": time.time(),
            "error": None,
            "next_action": None,
            "behaviour": token.get("behaviour"),
        }
        if amount > MAX_AMOUNT:
            self._fail(charge, "LIMIT_EXCEEDED", "The amount is above the bank's limit")
        elif token["method"] == "upi" and token.get("vpa") == DECLINED_VPA:
            self._fail(charge, "PAYMENT_FAILED", "The payer's bank declined the request")
        elif token["method"] == "card" and charge["behaviour"] != "frictionless":
            charge["status"] = "requires_action"
            charge["challenge_secret"] = secrets.token_urlsafe(16)
            url = f"{self.public_url}/challenge/{charge['id']}?s={charge['challenge_secret']}"
            charge["next_action"] = {"type": "redirect", "url": url}
        else:
            self._authorize(charge)
        with self.lock:
            self.charges[charge["id"]] = charge
            self._save()
        return 200, public(charge)

    def _fail(self, charge: dict, code: str, message: str) -> None:
        charge["status"] = "failed"
        charge["error"] = {"code": code, "message": message}
        charge["next_action"] = None

    def _authorize(self, charge: dict) -> None:
        """The issuer's decision once authentication is done (or not needed)."""
        decline = AMOUNT_DECLINES.get(charge["amount"] % 100)
        if charge["behaviour"] == "insufficient_funds":
            decline = AMOUNT_DECLINES[51]
        if decline:
            self._fail(charge, *decline)
            return
        charge["next_action"] = None
        if charge["capture"]:
            charge["status"] = "succeeded"
            charge["amount_captured"] = charge["amount"]
        else:
            charge["status"] = "authorized"

    def charge_for(self, account: dict, charge_id: str) -> dict:
        charge = self.charges.get(charge_id)
        if charge is None or charge["account"] != account["id"]:
            raise BankError(404, "NOT_FOUND", "No such charge")
        self._expire(charge)
        return charge

    def find_charge(self, account: dict, key: str) -> dict:
        with self.lock:
            for charge in self.charges.values():
                if charge["account"] == account["id"] and charge["idempotency_key"] == key:
                    self._expire(charge)
                    return charge
        raise BankError(404, "NOT_FOUND", "No charge with this idempotency key")

    def _expire(self, charge: dict) -> None:
        if (
            charge["status"] == "requires_action"
            and time.time() - charge["created"] > self.challenge_timeout
        ):
            with self.lock:
                self._fail(charge, "AUTHENTICATION_TIMEOUT", "The buyer did not authenticate")
                self._save()

    def capture(self, account: dict, charge_id: str, body: dict) -> tuple[int, dict]:
        with self.lock:
            charge = self.charge_for(account, charge_id)
            amount = body.get("amount", charge["amount"])
            if charge["status"] != "authorized":
                raise BankError(
                    409, "CAPTURE_FAILED", f"A {charge['status']} charge cannot be captured"
                )
            if not isinstance(amount, int) or not 0 < amount <= charge["amount"]:
                raise BankError(
                    400, "CAPTURE_FAILED", "The capture amount exceeds the authorization"
                )
            if amount % 100 == CAPTURE_DECLINED_PAISE:
                raise BankError(402, "CAPTURE_FAILED", "The issuer refused the capture")
            charge["status"] = "succeeded"
            charge["amount_captured"] = amount
            self._save()
            return 200, public(charge)

    def void(self, account: dict, charge_id: str) -> tuple[int, dict]:
        with self.lock:
            charge = self.charge_for(account, charge_id)
            if charge["status"] != "authorized":
                raise BankError(
                    409, "RELEASE_FAILED", f"A {charge['status']} charge cannot be voided"
                )
            charge["status"] = "voided"
            self._save()
            return 200, public(charge)

    def refund(self, account: dict, body: dict, key: str | None) -> tuple[int, dict]:
        with self.lock:
            charge = self.charge_for(account, str(body.get("charge")))
            amount = body.get("amount", charge["amount_captured"] - charge["amount_refunded"])
            refund = {
                "id": new_id("re_"),
                "object": "refund",
                "account": account["id"],
                "idempotency_key": key,
                "charge": charge["id"],
                "amount": amount,
                "status": "succeeded",
                "error": None,
            }
            available = charge["amount_captured"] - charge["amount_refunded"]
            if charge["status"] != "succeeded":
                refund["status"] = "failed"
                refund["error"] = {"code": "REFUND_FAILED", "message": "Nothing was captured"}
            elif not isinstance(amount, int) or not 0 < amount <= available:
                refund["status"] = "failed"
                refund["error"] = {
                    "code": "REFUND_FAILED",
                    "message": "The refund exceeds what is left of the capture",
                }
            elif amount % 100 == REFUND_DECLINED_PAISE:
                refund["status"] = "failed"
                refund["error"] = {
                    "code": "REFUND_FAILED",
                    "message": "The bank refused the refund",
                }
            else:
                charge["amount_refunded"] += amount
            self.refunds[refund["id"]] = refund
            self._save()
            return 200, dict(refund)

    def refund_for(self, account: dict, refund_id: str) -> dict:
        refund = self.refunds.get(refund_id)
        if refund is None or refund["account"] != account["id"]:
            raise BankError(404, "NOT_FOUND", "No such refund")
        return refund

    # -- the buyer's challenge ---------------------------------------------------------------

    def challenge(self, charge_id: str, secret: str) -> dict:
        charge = self.charges.get(charge_id)
        if charge is None or not hmac.compare_digest(charge.get("challenge_secret") or "", secret):
            raise BankError(404, "NOT_FOUND", "No such challenge")
        self._expire(charge)
        return charge

    def decide(self, charge_id: str, secret: str, approve: bool) -> dict:
        with self.lock:
            charge = self.challenge(charge_id, secret)
            if charge["status"] == "requires_action":
                if approve:
                    self._authorize(charge)
                else:
                    self._fail(
                        charge,
                        "AUTHENTICATION_FAILED",
                        "The buyer failed 3-D Secure authentication",
                    )
                self._save()
            return charge

    def callback_body(self, charge: dict) -> bytes:
        event = {
            "id": new_id("evt_"),
            "type": f"charge.{charge['status']}",
            "created": int(time.time()),
            "data": public(charge),
        }
        return json.dumps(event, separators=(",", ":")).encode()

    def send_callback(self, charge: dict) -> None:
        """POST the signed event to the charge's callback_url now; retry in the background."""
        url = charge.get("callback_url")
        if not url:
            return
        account = next(a for a in self.accounts.values() if a["id"] == charge["account"])
        body = self.callback_body(charge)

        def attempt() -> bool:
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(account["signing_secret"], body, int(time.time())),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT) as answer:
                    return 200 <= answer.status < 300
            except (urllib.error.URLError, OSError):
                return False

        if attempt():
            return

        def retry() -> None:
            for wait in CALLBACK_RETRIES:
                time.sleep(wait)
                if attempt():
                    return

        threading.Thread(target=retry, daemon=True).start()


PRIVATE_FIELDS = ("account", "challenge_secret", "callback_url", "behaviour", "created")


def public(charge: dict) -> dict:
    return {k: v for k, v in charge.items() if k not in PRIVATE_FIELDS}


CHALLENGE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Httpbank: 3-D Secure</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 3rem auto">
<h1>Httpbank Secure</h1>
<p>Confirm the payment of <strong>&#8377;{amount}</strong> with the card ending
<strong>{last4}</strong>.</p>
<form method="post" action="/challenge/{charge_id}">
<input type="hidden" name="s" value="{secret}">
<button type="submit" name="decision" value="approve" data-test-id="challenge-approve">Approve</button>
<button type="submit" name="decision" value="deny" data-test-id="challenge-deny">Deny</button>
</form></body></html>
"""

DONE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Httpbank</title></head>
<body><p data-test-id="challenge-done">{message}</p></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "Httpbank/0.1"
    bank: Bank
    admin_token: str | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        # The request line only (paths never carry card data; bodies are never logged).
        sys.stderr.write(f"httpbank {self.command} {urlsplit(self.path).path}\n")

    # -- plumbing ----------------------------------------------------------------------------

    def _send(self, status: int, body: dict | str, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, dict):
            data, kind = json.dumps(body).encode(), "application/json"
        else:
            data, kind = body.encode(), "text/html; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _raw(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise BankError(413, "BAD_REQUEST", "Body too large")
        return self.rfile.read(length) if length else b""

    def _json(self) -> dict:
        raw = self._raw()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise BankError(400, "BAD_REQUEST", "The body is not JSON") from None
        if not isinstance(body, dict):
            raise BankError(400, "BAD_REQUEST", "The body must be a JSON object")
        return body

    def _dispatch(self, method: str) -> None:
        try:
            self._route(method, urlsplit(self.path))
        except BankError as exc:
            self._send(exc.status, exc.body())
        except Exception as exc:  # noqa: BLE001 - a bank answers 500, never dies
            self._send(500, {"error": {"code": "INTERNAL", "message": type(exc).__name__}})

    def do_GET(self) -> None:  # noqa: N802 - stdlib's name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    # -- routes ------------------------------------------------------------------------------

    def _route(self, method: str, url) -> None:
        bank, parts = self.bank, [p for p in url.path.split("/") if p]
        if parts[:1] == ["challenge"] and len(parts) == 2:
            return self._challenge(method, parts[1], url)
        if parts == ["health"]:
            return self._send(200, {"ok": True})
        if parts == ["admin", "accounts"] and method == "POST":
            return self._admin_account()
        account = bank.account_for(self.headers.get("Authorization"))
        key = self.headers.get("Idempotency-Key")
        if method == "POST":
            body = self._json()
            if parts == ["v1", "tokens"]:
                status, answer = bank.idempotent(
                    account, "tokens", key, lambda: self._safely(bank.tokenize, account, body)
                )
            elif parts == ["v1", "charges"]:
                status, answer = bank.idempotent(
                    account, "charges", key,
                    lambda: self._safely(bank.create_charge, account, body, key),
                )  # fmt: skip
            elif len(parts) == 4 and parts[:2] == ["v1", "charges"] and parts[3] == "capture":
                status, answer = bank.idempotent(
                    account, f"capture:{parts[2]}", key,
                    lambda: self._safely(bank.capture, account, parts[2], body),
                )  # fmt: skip
            elif len(parts) == 4 and parts[:2] == ["v1", "charges"] and parts[3] == "void":
                status, answer = bank.idempotent(
                    account, f"void:{parts[2]}", key,
                    lambda: self._safely(bank.void, account, parts[2]),
                )  # fmt: skip
            elif parts == ["v1", "refunds"]:
                status, answer = bank.idempotent(
                    account, "refunds", key, lambda: self._safely(bank.refund, account, body, key)
                )
            else:
                raise BankError(404, "NOT_FOUND", "No such endpoint")
            return self._send(status, answer)
        if parts == ["v1", "charges"]:
            keys = parse_qs(url.query).get("idempotency_key") or [""]
            return self._send(200, public(bank.find_charge(account, keys[0])))
        if len(parts) == 3 and parts[:2] == ["v1", "charges"]:
            return self._send(200, public(bank.charge_for(account, parts[2])))
        if len(parts) == 3 and parts[:2] == ["v1", "refunds"]:
            return self._send(200, dict(bank.refund_for(account, parts[2])))
        raise BankError(404, "NOT_FOUND", "No such endpoint")

    @staticmethod
    def _safely(work, *args) -> tuple[int, dict]:
        """A refusal is an answer too (stored under the idempotency key)."""
        try:
            return work(*args)
        except BankError as exc:
            return exc.status, exc.body()

    def _admin_account(self) -> None:
        token = self.admin_token
        given = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(given, token):
            raise BankError(401, "UNAUTHORIZED", "Admin token required (--admin-token)")
        body = self._json()
        account = self.bank.add_account(
            str(body.get("id") or new_id("acct_")),
            new_id("hb_key_"),
            new_id("hb_whsec_"),
        )
        self._send(201, account)

    def _challenge(self, method: str, charge_id: str, url) -> None:
        if method == "GET":
            secret = (parse_qs(url.query).get("s") or [""])[0]
            charge = self.bank.challenge(charge_id, secret)
            if charge["status"] != "requires_action":
                return self._send(200, DONE_PAGE.format(message="This payment is already decided."))
            major, minor = divmod(charge["amount"], 100)
            page = CHALLENGE_PAGE.format(
                amount=f"{major:,}.{minor:02d}",
                last4=html.escape(charge.get("last4") or ""),
                charge_id=html.escape(charge_id),
                secret=html.escape(secret),
            )
            return self._send(200, page)
        form = parse_qs(self._raw().decode("utf-8", "replace"))
        secret = (form.get("s") or [""])[0]
        decision = (form.get("decision") or [""])[0]
        if decision not in ("approve", "deny"):
            raise BankError(400, "BAD_REQUEST", "decision must be approve or deny")
        charge = self.bank.decide(charge_id, secret, decision == "approve")
        self.bank.send_callback(charge)
        target = charge.get("return_url")
        if target:
            return self._send(303, DONE_PAGE.format(message="Returning..."), {"Location": target})
        return self._send(200, DONE_PAGE.format(message=f"Payment {charge['status']}."))


def make_server(
    bank: Bank, host: str = "127.0.0.1", port: int = 0, admin_token: str | None = None
) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"bank": bank, "admin_token": admin_token})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paygate_processor_httpbank.bank")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--public-url", help="the bank's address for buyers' browsers")
    parser.add_argument("--state", type=Path, help="a JSON file keeping the books across restarts")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="ID:API_KEY:SIGNING_SECRET",
        help="an account to create at start-up (repeatable)",
    )
    parser.add_argument("--admin-token", help="enables POST /admin/accounts with this bearer token")
    parser.add_argument("--challenge-timeout", type=float, default=600.0, help="seconds")
    args = parser.parse_args(argv)
    bank = Bank(
        args.public_url or "", state_file=args.state, challenge_timeout=args.challenge_timeout
    )
    for spec in args.account:
        parts = spec.split(":")
        if len(parts) != 3 or not all(parts):
            parser.error(f"--account takes ID:API_KEY:SIGNING_SECRET, got {spec!r}")
        bank.add_account(*parts)
    server = make_server(bank, args.host, args.port, args.admin_token)
    if not args.public_url:  # --port 0 picks a free port: name the one it got
        bank.public_url = f"http://{args.host}:{server.server_address[1]}"
    print(f"httpbank listening on {bank.public_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
