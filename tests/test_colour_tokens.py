"""The colour tokens of the checkout and the dashboard hold WCAG 2.2 AA contrast (issue 21).

Each stylesheet declares its colours once, as ``--pg-*`` custom properties in its ``:root``
block. These tests compute the contrast of every foreground/background pair the pages use,
and hold the stylesheets to the tokens: a text colour, an outline or a token used for text
that no pair checks fails here, so the next colour change cannot regress contrast unseen.
The browser tests (tests/browser/test_accessibility.py) check the rendered pages with axe-core.
"""

from __future__ import annotations

import re

import pytest

from tests.contrast import (
    CHECKOUT_CSS,
    DASHBOARD_CSS,
    LARGE,
    TEXT,
    UI,
    contrast,
    outside_token_block,
    over,
    parse_colour,
    resolve,
    tokens,
)

pytestmark = pytest.mark.unit

# (foreground, background, minimum, where). A background of "a over b" is token a painted
# over token b (translucent colours, the glow of the checkout's summary panel).
CHECKOUT_PAIRS = [
    ("--pg-text", "--pg-surface", TEXT, "body text, labels' values"),
    ("--pg-text", "--pg-surface-3", TEXT, "the challenge page's Deny button"),
    ("--pg-text-2", "--pg-surface", TEXT, "labels, state text"),
    ("--pg-text-2", "--pg-surface-3", TEXT, "the order id on the notice pages"),
    ("--pg-text-muted", "--pg-surface", TEXT, "hints, placeholders, 'Secured by Paygate'"),
    ("--pg-text-muted", "--pg-surface-2", TEXT, "the receipt's labels"),
    ("--pg-text-muted", "--pg-surface-3", TEXT, "muted text on grey"),
    ("--pg-text-muted", "--pg-bg", TEXT, "muted text on the page background"),
    ("--pg-accent", "--pg-surface", TEXT, "the merchant's initial"),
    ("--pg-accent", "--pg-accent-soft", UI, "the payment method icons"),
    ("--pg-accent-strong", "--pg-accent-soft", TEXT, "the amount on a state"),
    ("--pg-on-accent", "--pg-accent", TEXT, "Pay button (dark end)"),
    ("--pg-on-accent", "--pg-accent-light", TEXT, "Pay button (light end)"),
    ("--pg-on-accent", "--pg-accent-panel-from", TEXT, "summary panel (top)"),
    ("--pg-on-accent", "--pg-accent-panel-to", TEXT, "summary panel (bottom)"),
    ("--pg-on-accent-muted", "--pg-accent-panel-from", TEXT, "summary labels (top)"),
    ("--pg-on-accent-muted", "--pg-accent-panel-to", TEXT, "summary labels (bottom)"),
    ("--pg-on-accent-muted", "--pg-accent", TEXT, "summary labels (middle)"),
    ("--pg-on-accent-muted", "--pg-accent-glow over --pg-accent", LARGE, "under the glow"),
    ("--pg-on-accent", "--pg-bad-mark", TEXT, "the '!' of a field error"),
    ("--pg-on-accent", "--pg-visa", TEXT, "card network badge"),
    ("--pg-on-accent", "--pg-mastercard-from", TEXT, "card network badge"),
    ("--pg-on-accent", "--pg-mastercard-to", TEXT, "card network badge"),
    ("--pg-on-accent", "--pg-amex", TEXT, "card network badge"),
    ("--pg-on-accent", "--pg-rupay-from", TEXT, "card network badge"),
    ("--pg-on-accent", "--pg-rupay-to", TEXT, "card network badge"),
    ("--pg-bad", "--pg-surface", TEXT, "field errors"),
    ("--pg-bad", "--pg-bad-soft", TEXT, "the no-script message, the error icon"),
    ("--pg-ok", "--pg-ok-soft", TEXT, "the success icon (a colour for text: held as text)"),
    ("--pg-warn", "--pg-warn-soft", TEXT, "the warning icon (a colour for text: held as text)"),
    ("--pg-field", "--pg-surface", UI, "input borders"),
    ("--pg-bad-mark", "--pg-surface", UI, "the border of an input in error"),
    ("--pg-accent", "--pg-surface", UI, "the selected method's border"),
    ("--pg-focus", "--pg-surface", UI, "focus rings"),
    ("--pg-focus", "--pg-bg", UI, "focus rings on the page background"),
]

DASHBOARD_PAIRS = [
    ("--pg-text", "--pg-surface", TEXT, "body text"),
    ("--pg-text", "--pg-bg", TEXT, "page text"),
    ("--pg-text", "--pg-line-2", TEXT, "credentials"),
    ("--pg-text-2", "--pg-surface", TEXT, "labels"),
    ("--pg-text-2", "--pg-line-2", TEXT, "neutral badges"),
    ("--pg-text-muted", "--pg-surface", TEXT, "muted text in cards"),
    ("--pg-text-muted", "--pg-bg", TEXT, "muted text on the page"),
    ("--pg-text-muted", "--pg-surface-2", TEXT, "table headers"),
    ("--pg-text-muted", "--pg-line-2", TEXT, "the sign-in hint"),
    ("--pg-accent", "--pg-surface", TEXT, "links, the active period"),
    ("--pg-accent", "--pg-bg", TEXT, "links on the page"),
    ("--pg-accent-strong", "--pg-accent-soft", TEXT, "captured badge"),
    ("--pg-on-accent", "--pg-accent", TEXT, "primary buttons"),
    ("--pg-on-accent", "--pg-accent-hover", TEXT, "primary buttons (hover)"),
    ("--pg-on-accent", "--pg-bad", TEXT, "danger buttons"),
    ("--pg-on-accent", "--pg-bad-hover", TEXT, "danger buttons (hover)"),
    ("--pg-ok-text", "--pg-ok-soft", TEXT, "success badges and messages"),
    ("--pg-ok-text", "--pg-surface", TEXT, "'Copied'"),
    ("--pg-bad-text", "--pg-bad-soft", TEXT, "failure badges and messages"),
    ("--pg-warn-text", "--pg-warn-soft", TEXT, "pending badges"),
    ("--pg-info-text", "--pg-info-soft", TEXT, "information messages"),
    ("--pg-on-warn", "--pg-warn", TEXT, "the Test mode pill"),
    ("--pg-on-dark", "--pg-dark", TEXT, "sidebar: brand, current page"),
    ("--pg-on-dark-2", "--pg-dark", TEXT, "sidebar links"),
    ("--pg-on-dark-2", "--pg-dark-2", TEXT, "copy button on a code block"),
    ("--pg-on-dark-muted", "--pg-dark-2", TEXT, "code block titles"),
    ("--pg-code-text", "--pg-dark", TEXT, "code"),
    ("--pg-field", "--pg-surface", UI, "input borders"),
    ("--pg-focus", "--pg-surface", UI, "focus rings"),
    ("--pg-focus", "--pg-bg", UI, "focus rings on the page"),
    ("--pg-focus-on-dark", "--pg-dark", UI, "focus rings in the sidebar and code blocks"),
    ("--pg-focus-on-dark", "--pg-dark-2", UI, "focus rings on a code block's title"),
]

APPS = {"checkout": (CHECKOUT_CSS, CHECKOUT_PAIRS), "dashboard": (DASHBOARD_CSS, DASHBOARD_PAIRS)}

# Declarations whose colour must be a token outside the token block.
COLOUR_PROPERTY = re.compile(r"(?<![-\w])(color|outline|outline-color)\s*:\s*([^;{}]+)")
ALLOWED_KEYWORDS = {"inherit", "currentcolor", "transparent", "none", "initial", "unset"}
RAW_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b|rgba?\(|hsla?\(|\b(white|black)\b")


def background(spec: str, table: dict[str, str]):
    if " over " in spec:
        top, bottom = spec.split(" over ")
        return over(resolve(top, table), resolve(bottom, table))
    colour = resolve(spec, table)
    assert colour[3] == 1, f"{spec} is translucent: name what it is painted over"
    return colour


def ratio(fg: str, bg: str, table: dict[str, str]) -> float:
    back = background(bg, table)
    front = resolve(fg, table)
    if front[3] < 1:
        front = over(front, back)
    return contrast(front, back)


def test_contrast_arithmetic_matches_wcag():
    assert contrast(parse_colour("#000"), parse_colour("#fff")) == pytest.approx(21)
    assert contrast(parse_colour("#777"), parse_colour("#fff")) == pytest.approx(4.48, abs=0.01)
    # The findings, with the colours they had.
    assert contrast(parse_colour("#9ca3af"), parse_colour("#fff")) == pytest.approx(2.54, abs=0.01)
    assert contrast(parse_colour("#697386"), parse_colour("#eef1f5")) < 4.5
    translucent = over(parse_colour("rgba(0, 0, 0, 0.5)"), parse_colour("#fff"))
    assert translucent[:3] == pytest.approx((127.5, 127.5, 127.5))


@pytest.mark.parametrize("app", APPS)
def test_every_declared_colour_pair_meets_its_contrast_minimum(app):
    path, pairs = APPS[app]
    table = tokens(path.read_text())
    failures = [
        f"{fg} on {bg} ({where}): {ratio(fg, bg, table):.2f}:1, needs {minimum}:1"
        for fg, bg, minimum, where in pairs
        if ratio(fg, bg, table) < minimum
    ]
    assert not failures, f"{path.name}:\n" + "\n".join(failures)


@pytest.mark.parametrize("app", APPS)
def test_text_colours_and_outlines_come_from_the_tokens(app):
    path, pairs = APPS[app]
    css = path.read_text()
    table = tokens(css)
    assert table, f"{path.name} has no --pg-* token block in :root"
    raw = []
    used_for_text = set()
    for prop, value in COLOUR_PROPERTY.findall(outside_token_block(css)):
        value = value.strip()
        if value.lower() in ALLOWED_KEYWORDS:
            continue
        if RAW_COLOUR.search(value):
            raw.append(f"{prop}: {value}")
        for name in re.findall(r"var\((--[\w-]+)\)", value):
            assert name in table, f"{prop}: {value} uses {name}, which the token block lacks"
            if prop == "color":
                used_for_text.add(name)
    assert not raw, f"{path.name}: raw colours outside the token block:\n" + "\n".join(raw)
    checked = {fg for fg, _, minimum, _ in pairs if minimum == TEXT}
    assert used_for_text <= checked, (
        f"{path.name}: text colours no pair checks: {sorted(used_for_text - checked)}"
    )


@pytest.mark.parametrize("app", APPS)
def test_every_pair_names_tokens_that_exist(app):
    path, pairs = APPS[app]
    table = tokens(path.read_text())
    for fg, bg, _, _ in pairs:
        for name in [fg, *bg.split(" over ")]:
            assert name in table, f"{path.name}: {name} is not a token"
