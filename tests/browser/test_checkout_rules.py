"""The checkout page checks input with the server's rules: checkout-rules.js, run in Node, must
accept and refuse exactly what paygate/services/validation.py does."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paygate.errors import ValidationFailed
from paygate.services import validation

RULES_JS = Path(__file__).resolve().parents[2] / "web" / "checkout" / "static" / "checkout-rules.js"
TODAY = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)

RUN_IN_NODE = """
const rules = require(process.argv[1]);
const today = new Date(process.argv[2]);
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cases.map(([rule, value]) => {
  if (rule === 'network') return rules.cardNetwork(rules.cardDigits(value));
  if (rule === 'formatCard') return rules.formatCardNumber(value).text;
  if (rule === 'formatExpiry') return rules.formatExpiry(value);
  return rules.rules[rule](value.trim(), today) === '';
});
process.stdout.write(JSON.stringify(out));
"""

VPAS = [
    "user@paytm",
    "user.name-1_x@okhdfcbank",
    "invalid-vpa",
    "a@b.c",
    "@bank",
    "user@",
    "user@ok bank",
    "us er@bank",
    "",
    "ü@bank",
    "a" * 250 + "@bank",
    "a" * 251 + "@bank",
]
CARDS = [
    "4242424242424242",
    "4242 4242 4242 4242",
    "4242-4242-4242-4242",
    "4242424242424241",
    "424242424242",
    "4000000000000002",
    "378282246310005",
    "6011111111111117",
    "5555555555554444",
    "6522000000000001",
    "8171999927660000",
    "4242424242424242424",
    "42424242424242424242",
    "4242\t4242424242424242",
    "４２４２４２４２４２４２４２４２",
    "abcd",
    "",
]
EXPIRIES = [
    "12/30",
    "11/26",
    "10/26",
    "1/27",
    "01/2027",
    "13/30",
    "00/30",
    "12/76",
    "12/77",
    "12/2099",
]
CVVS = ["123", "1234", "12", "12345", "12a", "", "١٢٣"]


def run_rules(cases: list[tuple[str, str]]) -> list:
    result = subprocess.run(
        ["node", "-e", RUN_IN_NODE, str(RULES_JS), TODAY.isoformat()],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def server_accepts(check, *args, **kwargs) -> bool:
    try:
        check(*args, **kwargs)
    except ValidationFailed:
        return False
    return True


def test_page_and_server_accept_and_refuse_the_same_input():
    cases = (
        [("vpa", v) for v in VPAS]
        + [("cardNumber", c) for c in CARDS]
        + [("expiry", e) for e in EXPIRIES]
        + [("cvv", c) for c in CVVS]
    )
    expected = (
        [server_accepts(validation.vpa, v) for v in VPAS]
        + [server_accepts(validation.card_number, c) for c in CARDS]
        + [server_accepts(validation.expiry, *e.split("/"), today=TODAY) for e in EXPIRIES]
        + [server_accepts(validation.cvv, c) for c in CVVS]
    )
    page = run_rules(cases)
    disagreements = [
        (rule, value, f"page {'accepts' if ok else 'refuses'}")
        for (rule, value), ok, server in zip(cases, page, expected, strict=True)
        if ok != server
    ]
    assert disagreements == []
    assert True in page and False in page  # both answers occur: the comparison means something


def test_page_names_the_card_network_as_the_server_does():
    valid = [c for c in CARDS if server_accepts(validation.card_number, c)]
    page = run_rules([("network", c) for c in valid])
    server = [validation.card_network(validation.card_number(c)) for c in valid]
    assert page == [n if n != "unknown" else "" for n in server]
    assert {"visa", "amex", "mastercard", "rupay"} <= set(page)


@pytest.mark.parametrize(
    ("rule", "typed", "shown"),
    [
        ("formatCard", "4242424242424242", "4242 4242 4242 4242"),
        ("formatCard", "378282246310005", "3782 822463 10005"),
        ("formatCard", "4242-4242 42", "4242 4242 42"),
        ("formatExpiry", "1230", "12/30"),
        ("formatExpiry", "12/30", "12/30"),
        ("formatExpiry", "4", "04"),
        ("formatExpiry", "1", "1"),
    ],
)
def test_fields_are_formatted_as_the_buyer_types(rule, typed, shown):
    assert run_rules([(rule, typed)]) == [shown]
