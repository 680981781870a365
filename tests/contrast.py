"""WCAG 2.2 contrast arithmetic and the colour tokens of our stylesheets (the unit test of the
tokens and the browser tests' pixel measurements share it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKOUT_CSS = ROOT / "web" / "checkout" / "static" / "checkout.css"
DASHBOARD_CSS = ROOT / "web" / "dashboard" / "static" / "app.css"

# WCAG 2.2: 1.4.3 text, 1.4.3 large text (24px, or 18.66px bold), 1.4.11 non-text (UI
# component boundaries, focus indicators, graphics).
TEXT = 4.5
LARGE = 3.0
UI = 3.0

RGBA = tuple[float, float, float, float]

_HEX = re.compile(r"#([0-9a-fA-F]{3,8})\b")
_FUNC = re.compile(r"rgba?\(\s*([^)]*)\)")
_TOKEN_BLOCK = re.compile(r":root\s*\{(?P<body>[^}]*)\}")
_DECLARATION = re.compile(r"(--pg-[\w-]+)\s*:\s*([^;]+);")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def parse_colour(text: str) -> RGBA:
    """``#rgb``, ``#rrggbb``, ``#rrggbbaa``, ``rgb()``/``rgba()`` (commas or spaces, ``/``
    alpha) as 0-255 channels and a 0-1 alpha."""
    text = text.strip()
    match = _HEX.fullmatch(text)
    if match:
        digits = match.group(1)
        if len(digits) in (3, 4):
            digits = "".join(d * 2 for d in digits)
        channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        alpha = channels[3] / 255 if len(channels) == 4 else 1.0
        return (channels[0], channels[1], channels[2], alpha)
    match = _FUNC.fullmatch(text)
    if match:
        parts = [p for p in re.split(r"[\s,/]+", match.group(1)) if p]
        values = [float(p[:-1]) * 2.55 if p.endswith("%") else float(p) for p in parts[:3]]
        alpha = 1.0
        if len(parts) > 3:
            alpha = float(parts[3][:-1]) / 100 if parts[3].endswith("%") else float(parts[3])
        return (values[0], values[1], values[2], alpha)
    if text == "white":
        return (255, 255, 255, 1.0)
    if text == "black":
        return (0, 0, 0, 1.0)
    raise ValueError(f"not a colour: {text!r}")


def over(top: RGBA, bottom: RGBA) -> RGBA:
    """``top`` painted over an opaque ``bottom`` (source-over)."""
    alpha = top[3]
    return (
        top[0] * alpha + bottom[0] * (1 - alpha),
        top[1] * alpha + bottom[1] * (1 - alpha),
        top[2] * alpha + bottom[2] * (1 - alpha),
        1.0,
    )


def luminance(colour: RGBA | tuple[float, float, float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = colour[:3]
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: RGBA | tuple[float, float, float], b: RGBA | tuple[float, float, float]) -> float:
    """The WCAG contrast ratio of two opaque colours, 1 to 21."""
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def strip_comments(css: str) -> str:
    return _COMMENT.sub("", css)


def tokens(css: str) -> dict[str, str]:
    """The ``--pg-*`` custom properties of the stylesheet's first ``:root`` block (the token
    block), name to raw value."""
    match = _TOKEN_BLOCK.search(strip_comments(css))
    if not match:
        return {}
    return dict(_DECLARATION.findall(match.group("body")))


def outside_token_block(css: str) -> str:
    """The stylesheet without its comments and without the token block."""
    css = strip_comments(css)
    match = _TOKEN_BLOCK.search(css)
    return css if not match else css[: match.start()] + css[match.end() :]


def resolve(name: str, table: dict[str, str], depth: int = 0) -> RGBA:
    """A token's colour, following ``var(--pg-...)`` references inside the block."""
    value = table[name].strip()
    ref = re.fullmatch(r"var\((--pg-[\w-]+)\)", value)
    if ref and depth < 8:
        return resolve(ref.group(1), table, depth + 1)
    return parse_colour(value)
