"""The decline-code catalogue (paygate/declines.py) and docs/declines.md say the same, carry the
codes the issue names, and the docs that point processors and merchants to it link it."""

from __future__ import annotations

import re
from pathlib import Path

from paygate import declines
from paygate.types import ChargeResult, RefundResult

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "declines.md"
REQUIRED = {
    "PAYMENT_FAILED",
    "CARD_DECLINED",
    "INSUFFICIENT_FUNDS",
    "EXPIRED_CARD",
    "INCORRECT_CVV",
    "AUTHENTICATION_FAILED",
    "AUTHENTICATION_TIMEOUT",
    "PROCESSOR_UNAVAILABLE",
    "INVALID_VPA",
    "LIMIT_EXCEEDED",
    "CAPTURE_FAILED",
    "RELEASE_FAILED",
    "REFUND_FAILED",
}


def documented(text: str) -> list[tuple[str, str, str, str]]:
    return re.findall(
        r"^\| `([A-Z_]+)` \| (.+?) \| (retryable|final) \| (buyer|merchant) \|$", text, re.M
    )


def test_the_catalogue_has_the_required_codes_once_each_fully_described():
    codes = [d.code for d in declines.CATALOGUE]
    assert len(codes) == len(set(codes))
    assert REQUIRED <= set(codes)
    for decline in declines.CATALOGUE:
        assert decline.meaning and decline.kind in (declines.RETRYABLE, declines.FINAL)
        assert decline.shown_to in (declines.BUYER, declines.MERCHANT)
        assert getattr(declines, decline.code) == decline.code  # a constant per code


def test_the_doc_is_the_catalogue():
    text = DOC.read_text()
    assert text == declines.markdown(), "regenerate: python -m paygate.declines > docs/declines.md"
    rows = documented(text)
    assert [(c, m, k, s) for c, m, k, s in rows] == [
        (d.code, d.meaning, d.kind, d.shown_to) for d in declines.CATALOGUE
    ]


def test_a_planted_difference_is_seen():
    text = declines.markdown().replace("| `EXPIRED_CARD` |", "| `EXPIRED` |")
    assert [row[0] for row in documented(text)] != [d.code for d in declines.CATALOGUE]


def test_the_default_refusal_codes_are_in_the_catalogue():
    assert ChargeResult.failed().error_code in declines.BY_CODE
    assert RefundResult.failed().error_code in declines.BY_CODE


def test_plugins_and_api_docs_link_the_list():
    for doc in ("plugins.md", "api.md"):
        assert "(declines.md)" in (ROOT / "docs" / doc).read_text(), doc
